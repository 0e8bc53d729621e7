"""Registry of scalable base networks: the built-in ones, those registered in Python
(:func:`register_base`) and spec files given by path (``--base path/to/mynet.toml``).

A base is either declared as data (:class:`~.declared.SpecNetwork`: every built-in base is
one, and so is any spec file with ``stages``) and counted analytically, or a PyTorch model
built by a factory and counted by tracing (:class:`~.traced.TracedBase`). Either records
itself (:func:`base_record`) in run folders, formula files and model files, and
:func:`restore_base` registers it again from that record, so a file carries its base.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...core.errors import TinyFormulaError
from .declared import SpecNetwork
from .factories import factory_source, import_factory
from .fd_mobilenet import fd_mobilenet
from .files import looks_like_path, read_spec_file
from .ghostnet import ghostnet_100
from .mobile import efficientnet_b0, mobilenetv2_100
from .mobilenetv3 import mobilenetv3_large_100, mobilenetv3_small_100, mobilenetv4_conv_small
from .netspec import NetworkSpec
from .resnet import resnet50
from .spec import BaseNetwork
from .traced import TracedBase

BUILTIN: dict[str, BaseNetwork] = {
    base.name: base
    for base in (efficientnet_b0, mobilenetv2_100, resnet50, ghostnet_100, fd_mobilenet,
                 mobilenetv3_large_100, mobilenetv3_small_100, mobilenetv4_conv_small)}
_BASES: dict[str, BaseNetwork] = dict(BUILTIN)
# Where each spec-file base came from (path -> (mtime, size, name)): a file is read once.
_FILES: dict[str, tuple] = {}
_TRACED_KEYS = ("name", "factory", "resolution", "summary")


def list_bases() -> list[str]:
    """Names of the available base networks: the built-in ones, then those registered."""
    return list(_BASES)


def get_base(name) -> BaseNetwork:
    """The base network called ``name``, or the one a spec file at that path declares
    (registered under its own name); a :class:`TinyFormulaError` names the known ones."""
    if isinstance(name, BaseNetwork):   # a base object: registered under its name
        return _register(name, f"base {name.name}")
    if isinstance(name, str) and name in _BASES:
        return _BASES[name]
    if looks_like_path(name):
        return load_base_file(name)
    raise TinyFormulaError(
        f"unknown base {name!r}; known bases: {', '.join(_BASES)}; or give a spec file "
        f"(path/to/mynet.toml or .json)")


def base_name(name) -> str:
    """The registered name of ``name`` (a name, a spec file's path or a base)."""
    return get_base(name).name


def is_builtin(name: str) -> bool:
    return name in BUILTIN and _BASES.get(name) is BUILTIN[name]


def load_base_file(path) -> BaseNetwork:
    """Read, check and register the base a spec file declares; the same file again (unchanged)
    is not read twice. A name already registered with another spec is refused."""
    path = Path(path)
    try:
        stat = path.stat()
        key = str(path.resolve())
    except OSError:
        stat, key = None, str(path)
    if stat is not None and key in _FILES and _FILES[key][:2] == (stat.st_mtime_ns,
                                                                   stat.st_size):
        return _BASES[_FILES[key][2]]
    data = read_spec_file(path)
    base = base_from_dict(data, origin=str(path), relative_to=path.parent)
    registered = _register(base, origin=str(path))
    if stat is not None:
        _FILES[key] = (stat.st_mtime_ns, stat.st_size, registered.name)
    return registered


def base_from_dict(data, origin: str = "spec", relative_to: Path | None = None) -> BaseNetwork:
    """A base from a spec's table: a declared network, or (with ``factory``) a traced one."""
    if isinstance(data, dict) and "factory" in data:
        return _traced_from_dict(data, origin, relative_to)
    return SpecNetwork.from_dict(data, origin)


def _traced_from_dict(data: dict, origin: str, relative_to: Path | None,
                      trusted: bool = False) -> TracedBase:
    from ...core.constraints import check
    from .netspec import _name
    from .spec import RESOLUTION_BASE

    unknown = sorted(set(data) - set(_TRACED_KEYS))
    if unknown:
        raise TinyFormulaError(f"{origin}: unknown field {unknown[0]!r} for a base built by a "
                               f"factory (known: {', '.join(_TRACED_KEYS)})")
    name = _name(data.get("name"), origin) if "name" in data else None
    if name is None:
        raise TinyFormulaError(f"{origin}: missing field 'name' (what --base and files call it)")
    source = data["factory"]
    if source is None:
        raise TinyFormulaError(f"{origin}: base {name} was registered from a factory that "
                               f"cannot be imported by name; register it again here with "
                               f"tinyformula.register_base({name!r}, factory=...)")
    factory = import_factory(source, relative_to)
    if isinstance(source, str) and source.rpartition(":")[0].endswith(".py"):
        where, _, qualname = source.rpartition(":")
        path = Path(where)
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        source = f"{path.resolve()}:{qualname}"   # what a worker process imports
    resolution = check(f"{origin}: resolution", data.get("resolution", 224), RESOLUTION_BASE)
    summary = data.get("summary", "")
    if not isinstance(summary, str) or len(summary) > 500:
        raise TinyFormulaError(f"{origin}: summary must be a text of at most 500 characters")
    if trusted:   # checked where it was recorded: count by shapes, check nothing now
        return TracedBase(name, factory, resolution, summary, source, method="shape")
    base = TracedBase(name, factory, resolution, summary, source)
    base.check_input(max(1, int(resolution * 0.25)), origin)
    return base


def _register(base: BaseNetwork, origin: str, replace: bool = False) -> BaseNetwork:
    known = _BASES.get(base.name)
    if known is None:
        _BASES[base.name] = base
        return base
    if known is base:
        return known
    if is_builtin(base.name):
        if base.counted == "analytic" and known.record() == base.record():
            return known   # the built-in base's own spec (examples/bases/)
        raise TinyFormulaError(f"{origin}: {base.name} is a built-in base with another spec; "
                               f"give your base another name")
    same = known.record() == base.record() and (
        base.counted == "analytic"
        or getattr(known, "factory", None) is getattr(base, "factory", None))
    if same:
        return known
    if not replace:
        raise TinyFormulaError(
            f"{origin}: a base called {base.name} is registered already, with another "
            f"{'spec' if base.counted == 'analytic' else 'factory'}; rename one of them")
    _BASES[base.name] = base
    return base


def register_base(name=None, *, spec=None, factory: Callable | None = None,
                  resolution: int = 224, summary: str = "", replace: bool = False
                  ) -> BaseNetwork:
    """Make a base available to every part of tinyformula under its name.

    Three forms::

        register_base(spec={"name": "mynet", "stem": {...}, "stages": [...], ...})
        register_base("path/to/mynet.toml")                     # or .json
        register_base("mynet", factory=build, resolution=32)    # any PyTorch model

    ``factory(depth_multiplier, width_multiplier, num_classes)`` returns an ``nn.Module``
    mapping ``(batch, 3, s, s)`` images to ``(batch, num_classes)`` logits; it is counted by
    tracing (see :mod:`.traced`) and checked now: built at r = d = w = 1 and run at a quarter
    of ``resolution`` (the smallest input a search uses). A spec is checked field by field
    (docs/bases.md). A name already registered with something else is refused unless
    ``replace=True``; built-in names are never replaced.

    Returns the registered :class:`BaseNetwork`.
    """
    if factory is not None:
        if spec is not None:
            raise TinyFormulaError("give register_base a spec or a factory, not both")
        if not isinstance(name, str):
            raise TinyFormulaError("register_base(name, factory=...) needs the base's name")
        from .netspec import _name

        _name(name, "register_base")
        base: BaseNetwork = TracedBase(name, factory, _resolution(resolution), summary,
                                       factory_source(factory))
        base.check_input(max(1, int(base.default_resolution * 0.25)), f"base {name}")
        return _register(base, f"register_base({name!r})", replace)
    if spec is None and isinstance(name, (str, Path)) and looks_like_path(name):
        data = read_spec_file(name)
        base = base_from_dict(data, str(name), Path(name).parent)
        return _register(base, str(name), replace)
    if spec is None and isinstance(name, BaseNetwork):
        return _register(name, f"register_base({name.name!r})", replace)
    if isinstance(spec, NetworkSpec):
        spec = spec.to_dict()
    if not isinstance(spec, dict):
        raise TinyFormulaError("register_base needs spec= (a dict), factory= (with a name) or a "
                               "spec file's path")
    if name is not None and spec.get("name", name) != name:
        raise TinyFormulaError(f"register_base: the name {name!r} differs from the spec's "
                               f"{spec.get('name')!r}")
    spec = {"name": name, **spec} if name is not None else spec
    base = base_from_dict(spec, "register_base")
    return _register(base, f"register_base({base.name!r})", replace)


def _resolution(value) -> int:
    from ...core.constraints import check
    from .spec import RESOLUTION_BASE

    return check("resolution", value, RESOLUTION_BASE)


def unregister_base(name: str) -> None:
    """Forget a registered base (built-in ones stay)."""
    if is_builtin(name):
        raise TinyFormulaError(f"{name} is a built-in base")
    _BASES.pop(name, None)
    for key in [k for k, v in _FILES.items() if v[2] == name]:
        del _FILES[key]


def base_record(name) -> dict | None:
    """What a file stores of a base beyond its name: None for a built-in base (the name is
    enough), else the base's record (its canonical spec and checksum, or its factory's
    import path)."""
    base = get_base(name)
    return None if is_builtin(base.name) else base.record()


def restore_base(record, origin: str = "a file", trusted: bool = False) -> str:
    """Register the base a stored record describes (checked as a spec file is, its checksum
    included) and return its name. A base of that name registered already must be the same
    one: a file fitted on another network of the same name is refused, in one line.
    ``trusted``: a worker process rebuilding the base its driver checked (a traced base is
    then not counted by fvcore again to choose how to count it)."""
    from ...core.files import checksum

    if not isinstance(record, dict) or record.get("kind") not in ("spec", "traced") \
            or not isinstance(record.get("spec"), dict):
        raise TinyFormulaError(f"{origin} holds a damaged base record (base_spec)")
    body = record["spec"]
    if record.get("checksum") != checksum(body):
        raise TinyFormulaError(f"{origin}: its base's spec was changed after it was written "
                               f"(checksum mismatch)")
    name = body.get("name")
    known = _BASES.get(name) if isinstance(name, str) else None
    if known is not None:
        if is_builtin(name) or known.record() != record:
            if record["kind"] == "traced" and known.counted == "traced" and not is_builtin(name):
                return name   # the same factory name: its code cannot be compared
            raise TinyFormulaError(
                f"{origin} was made with a base {name!r} other than the one registered here "
                f"(another spec); use the file's own base, or rename yours")
        return name
    base = base_from_dict(body, origin) if record["kind"] == "spec" \
        else _traced_from_dict(body, origin, None, trusted)
    return _register(base, origin).name


__all__ = ["BaseNetwork", "NetworkSpec", "SpecNetwork", "TracedBase", "base_name", "base_record",
           "get_base", "is_builtin", "list_bases", "load_base_file", "register_base",
           "restore_base", "unregister_base"]
