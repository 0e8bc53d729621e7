import os

import pytest
from hypothesis import settings

# CI runs the same examples every time (reproducible); locally each run explores new ones.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session", autouse=True)
def prepared_data_cache(tmp_path_factory):
    """Prepared datasets go to a folder of this test session (inherited by the commands and
    workers the tests start), never to the user's cache."""
    folder = tmp_path_factory.mktemp("prepared")
    previous = os.environ.get("TINYFORMULA_DATA_CACHE")
    os.environ["TINYFORMULA_DATA_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("TINYFORMULA_DATA_CACHE", None)
    else:
        os.environ["TINYFORMULA_DATA_CACHE"] = previous


@pytest.fixture(scope="module")
def one_thread():
    """Small models run far faster on one thread than with every core shared among jobs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cli(capsys):
    """Run the tinyformula command in-process; returns (exit status, stdout, stderr)."""
    from tinyformula.cli import main

    def run(*argv):
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exit_:  # argparse exits on usage errors and --help
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
