"""Small adapters for libraries that hard-code device names (transformers, accelerate, DeepSpeed).

Each adapter patches one library module right after it is imported (or at once, if it already is),
only for the library versions it was written against; outside them it stays off and says so once.
Every patch is idempotent and changes behaviour only when biren is the device the user selected:
ACCELERATE_TORCH_DEVICE=biren[:N], DS_ACCELERATOR=biren, or the CUDA migration on.

`status()` says which adapters are applied, skipped (and why) or waiting for their module.
The upstream change that would make each adapter unnecessary is in its module's docstring.
"""

import importlib.abc
import importlib.machinery
import os
import sys
import threading
import warnings

__all__ = ["selected", "status", "install"]

# module name -> list of (adapter name, apply(module), supported(version) -> bool, distribution)
_hooks = {}
_status = {}  # adapter name -> "applied" | "waiting for <module>" | "skipped: <why>"
_pending = set()  # modules that were mid-import when their adapters registered
_lock = threading.RLock()


def selected():
    """True when the user selected biren for HF accelerate / DeepSpeed (see the module docstring)."""
    if os.environ.get("ACCELERATE_TORCH_DEVICE", "").split(":")[0].strip() == "biren":
        return True
    if os.environ.get("DS_ACCELERATOR", "") == "biren":
        return True
    from .. import migration

    return migration.target() == "biren"


def status():
    _flush_pending()
    return dict(_status)


def version_tuple(text):
    """'1.15.0.dev0' -> (1, 15, 0), '5.0.0rc1' -> (5, 0, 0): the leading numeric release parts."""
    import re

    match = re.match(r"\d+(\.\d+)*", text)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def _version(distribution):
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _run(module_name, module):
    for name, apply, supported, distribution in _hooks.get(module_name, ()):
        if _status.get(name) == "applied":
            continue
        version = _version(distribution)
        if version is None or not supported(version_tuple(version)):
            _status[name] = f"skipped: {distribution} {version} is outside the versions this adapter knows"
            warnings.warn(f"torch_biren: adapter '{name}' not applied ({_status[name]}); see "
                          "docs/user-guide.md, 'Hugging Face and DeepSpeed'", RuntimeWarning, stacklevel=2)
            continue
        try:
            apply(module)
            _status[name] = "applied"
        except Exception as err:  # noqa: BLE001 - an adapter must never break the user's import
            _status[name] = f"skipped: {type(err).__name__}: {err}"
            warnings.warn(f"torch_biren: adapter '{name}' failed ({err}); {distribution} runs unadapted",
                          RuntimeWarning, stacklevel=2)


class _Loader(importlib.abc.Loader):
    """Runs the real loader, then the adapters of the module it loaded; everything else delegates."""

    def __init__(self, loader, name):
        self._loader, self._name = loader, name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        with _lock:
            _run(self._name, module)

    def __getattr__(self, attr):  # get_data, get_resource_reader, is_package, ...
        return getattr(self._loader, attr)


def _initializing(module):
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _flush_pending():
    """Adapts the modules that have finished importing since they were found half-imported. (torch, and
    so this package, is often first imported from inside a library module, e.g. accelerate.accelerator.)"""
    if not _pending:
        return
    with _lock:
        for name in list(_pending):
            module = sys.modules.get(name)
            if module is None:
                _pending.discard(name)  # its import failed; the finder sees it again if retried
            elif not _initializing(module):
                _pending.discard(name)
                _run(name, module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        _flush_pending()  # any later import means a half-imported module may be complete now
        if name not in _hooks:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader, name)
                return spec
        return None


_finder = _Finder()


def register(name, module_name, apply, supported, distribution):
    """Adds an adapter: `apply(module)` runs once `module_name` is imported, if `supported(version)`."""
    with _lock:
        if any(entry[0] == name for entry in _hooks.get(module_name, ())):
            return  # idempotent
        _hooks.setdefault(module_name, []).append((name, apply, supported, distribution))
        _status.setdefault(name, f"waiting for {module_name}")
        module = sys.modules.get(module_name)
        if module is not None:
            if _initializing(module):
                _pending.add(module_name)
            else:
                _run(module_name, module)


def install():
    """Registers every adapter (torch_biren/__init__ calls this once the device is loaded)."""
    with _lock:
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    from . import accelerate, deepspeed, transformers

    for adapter in (transformers, accelerate, deepspeed):
        adapter.register_all()
