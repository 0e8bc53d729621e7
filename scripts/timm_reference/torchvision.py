"""Test-only stub of torchvision: timm imports names from it at import time; the counts here
never call them. Every attribute is a class, every submodule is this stub again."""
import sys
import types


class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return f"{cls.__name__}.{name}"


class _Stub(types.ModuleType):
    __path__: list = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name[:1].isupper() or name in ("FrozenBatchNorm2d",):
            cls = _Meta(name, (), {"__init__": lambda self, *a, **k: None})
            setattr(self, name, cls)
            return cls
        return _module(f"{self.__name__}.{name}")


def _module(name):
    if name not in sys.modules:
        sys.modules[name] = _Stub(name)
    return sys.modules[name]


class _Finder:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname.startswith("torchvision."):
            import importlib.machinery
            return importlib.machinery.ModuleSpec(fullname, _Loader())
        return None


class _Loader:
    def create_module(self, spec):
        return _module(spec.name)

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())
__path__ = []
