import os

import pytest
from hypothesis import settings

# CI runs the same examples every time (reproducible); locally each run explores new ones.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="module")
def one_thread():
    """Small models run far faster on one thread than with every core shared among jobs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
