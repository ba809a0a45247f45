"""The CUDA -> biren (or CPU) rewrites, as a list of reversible attribute patches.

Each patch replaces one attribute and remembers the original, so `disable()` puts every one back.
Device arguments are rewritten where they enter PyTorch (torch.device, factories, .to, .cuda,
torch.load, autocast, GradScaler, DataLoader, DeviceMesh, process groups); `torch.cuda.*` names are
pointed at `torch.biren.*`.
"""

import contextlib
import copyreg
import functools
import time

import torch
import torch.utils._device

CUDA = "cuda"
_REAL_DEVICE = torch.device
_REAL_GENERATOR = torch.Generator

# Factory functions in the torch namespace that take `device=`.
FACTORIES = (
    "arange", "as_tensor", "asarray", "bartlett_window", "blackman_window", "empty", "empty_like",
    "empty_strided", "eye", "frombuffer", "full", "full_like", "hamming_window", "hann_window",
    "kaiser_window", "linspace", "logspace", "normal", "ones", "ones_like", "rand", "rand_like", "randint",
    "randint_like", "randn", "randn_like", "randperm", "range", "scalar_tensor", "tensor", "tril_indices",
    "triu_indices", "zeros", "zeros_like", "from_numpy", "get_device_module", "empty_permuted",
)  # fmt: skip
TENSOR_METHODS_DEVICE_KW = ("new_empty", "new_empty_strided", "new_full", "new_ones", "new_tensor", "new_zeros")
# torch.cuda names without a torch.biren twin that scripts commonly call, and what they become.
CUDA_SHIMS = ("is_current_stream_capturing", "get_arch_list", "ipc_collect", "memory_cached", "max_memory_cached",
              "reset_max_memory_allocated", "reset_max_memory_cached", "is_tf32_supported", "default_generators")


class _State:
    target = None  # "biren" or "cpu" while enabled
    undo = []  # callables that take one patch back, in the order they were made


_MISSING = object()
state = _State()


def _is_cuda_str(s):
    return s == CUDA or (s.startswith(CUDA) and s[4:5] == ":")


def map_device(d):
    """'cuda', 'cuda:N', torch.device('cuda', N) -> the target device; anything else unchanged."""
    t = type(d)
    if t is str:
        if _is_cuda_str(d):
            return state.target if state.target == "cpu" else state.target + d[4:]
        return d
    if t is _REAL_DEVICE and d.type == CUDA:
        return _REAL_DEVICE("cpu") if state.target == "cpu" else _REAL_DEVICE(state.target, d.index)
    return d


def map_type(device_type):
    return state.target if device_type == CUDA else device_type


def _patch(owner, name, value):
    # On a class, only its own __dict__ counts: an attribute inherited from a base (Tensor.to comes from
    # the C TensorBase) is restored by deleting the override.
    orig = owner.__dict__.get(name, _MISSING) if isinstance(owner, type) else getattr(owner, name, _MISSING)

    def undo():
        if orig is _MISSING:
            with contextlib.suppress(AttributeError):
                delattr(owner, name)
        else:
            setattr(owner, name, orig)

    setattr(owner, name, value)
    state.undo.append(undo)


def _distinct(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def _patch_dict(d, key, value):
    orig = d.get(key, _MISSING)
    d[key] = value
    state.undo.append(lambda: d.pop(key, None) if orig is _MISSING else d.__setitem__(key, orig))


# --- wrappers -------------------------------------------------------------------------------------


def _map_kw(fn, names=("device",)):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for name in names:
            if name in kwargs:
                kwargs[name] = map_device(kwargs[name])
        return fn(*args, **kwargs)

    return wrapper


def _map_all(fn):
    """Maps every positional and keyword argument that is a device (for to(), set_device(), ...)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        args = [map_device(a) for a in args]
        for k, v in kwargs.items():
            kwargs[k] = map_device(v)
        return fn(*args, **kwargs)

    return wrapper


def _map_type_arg(fn, name):
    """Maps a device *type* argument ('cuda' -> target) passed first or by `name`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if args and type(args[0]) is str:
            args = (map_type(args[0]), *args[1:])
        if name in kwargs:
            kwargs[name] = map_type(kwargs[name])
        return fn(*args, **kwargs)

    return wrapper


class _ProxyMeta(type):
    """isinstance/issubclass against the proxy ask the real class: a proxy returns real objects."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, cls._real)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, cls._real)


def _device_proxy():
    class device(metaclass=_ProxyMeta):
        _real = _REAL_DEVICE
        __doc__ = _REAL_DEVICE.__doc__

        def __new__(cls, *args, **kwargs):
            if args:
                first = args[0]
                if type(first) is str and _is_cuda_str(first):
                    if state.target == "cpu":
                        return _REAL_DEVICE("cpu")
                    args = (state.target + first[4:], *args[1:])
                elif type(first) is _REAL_DEVICE:
                    args = (map_device(first), *args[1:])
            elif kwargs.get("type") == CUDA:
                kwargs["type"] = state.target
                if state.target == "cpu":
                    kwargs.pop("index", None)
            return _REAL_DEVICE(*args, **kwargs)

    device.__module__, device.__qualname__ = "torch", "device"
    return device


def _generator_proxy():
    class Generator(metaclass=_ProxyMeta):
        _real = _REAL_GENERATOR
        __doc__ = _REAL_GENERATOR.__doc__

        def __new__(cls, device="cpu"):
            return _REAL_GENERATOR(map_device(device))

    Generator.__module__, Generator.__qualname__ = "torch", "Generator"
    return Generator


def _reduce_device(d):
    # Pickles name the class `torch.device`, which is the proxy while the migration is on; pickle
    # insists that the name resolves to the class it saves, so save the proxy. Loading needs nothing.
    return (torch.device, (d.type,) if d.index is None else (d.type, d.index))


def _tensor_to(orig):
    @functools.wraps(orig)
    def to(self, *args, **kwargs):
        if args and (type(args[0]) is str or type(args[0]) is _REAL_DEVICE):
            args = (map_device(args[0]), *args[1:])
        if "device" in kwargs:
            kwargs["device"] = map_device(kwargs["device"])
        return orig(self, *args, **kwargs)

    return to


def _target_device(device):
    """The device that `.cuda(device)` means: None -> current, int -> index, 'cuda:N' -> target:N."""
    if state.target == "cpu":
        return _REAL_DEVICE("cpu")
    if device is None:
        return _REAL_DEVICE(state.target, torch.biren.current_device())
    if isinstance(device, int):
        return _REAL_DEVICE(state.target, device)
    device = _REAL_DEVICE(map_device(device)) if isinstance(device, str) else map_device(device)
    if device.type != state.target:
        raise ValueError(f"Invalid device, must be cuda device (under the biren migration): {device}")
    return device


def _tensor_cuda(self, device=None, non_blocking=False, memory_format=torch.preserve_format):
    return self.to(_target_device(device), non_blocking=non_blocking, memory_format=memory_format)


def _module_cuda(self, device=None):
    dev = _target_device(device)
    return self._apply(lambda t: t.to(dev))


def _is_cuda(self):
    return self.device.type in (CUDA, state.target)


def _load(orig):
    @functools.wraps(orig)
    def load(f, map_location=None, *args, **kwargs):
        return orig(f, _map_location(map_location), *args, **kwargs)

    return load


def _restore_cuda_tags(storage, location):
    # Checkpoints written on a CUDA machine tag storages 'cuda:N': restore them on the target.
    if _is_cuda_str(location):
        return torch.serialization.default_restore_location(storage, map_device(location))
    return None


def _map_location(ml):
    if ml is None:
        return _restore_cuda_tags
    if isinstance(ml, (str, _REAL_DEVICE)):
        return map_device(ml)
    if isinstance(ml, dict):
        out = {}
        for k, v in ml.items():
            out[k] = map_device(v)
            if isinstance(k, str) and _is_cuda_str(k) and state.target != "cpu":
                out.setdefault(state.target + k[4:], map_device(v))  # the same checkpoint saved on biren
        return out
    if callable(ml):
        return lambda storage, loc: ml(storage, loc) or _restore_cuda_tags(storage, loc)
    return ml


def _init_patch(cls, map_args):
    """Wraps cls.__init__ so that its arguments are mapped first (the class itself stays the same)."""
    orig = cls.__dict__["__init__"]

    @functools.wraps(orig)
    def __init__(self, *args, **kwargs):
        args, kwargs = map_args(args, kwargs)
        orig(self, *args, **kwargs)

    _patch(cls, "__init__", __init__)


def _autocast_args(args, kwargs):
    dev = args[0] if args else kwargs.get("device_type")
    if dev == CUDA:
        if args:
            args = (state.target, *args[1:])
        else:
            kwargs["device_type"] = state.target
        # CUDA's default autocast dtype is float16, as biren's; the CPU's is bfloat16: keep CUDA's so that
        # a CPU reference run has the script's numerics.
        if state.target == "cpu" and len(args) < 2 and kwargs.get("dtype") is None:
            kwargs["dtype"] = torch.float16
    return args, kwargs


def _scaler_args(args, kwargs):
    if args:
        args = (map_type(args[0]), *args[1:])
    else:
        kwargs["device"] = map_type(kwargs.get("device", CUDA))  # GradScaler() means CUDA
    return args, kwargs


def _dataloader_args(args, kwargs):
    if "pin_memory_device" in kwargs:
        kwargs["pin_memory_device"] = map_type(kwargs["pin_memory_device"])
    return args, kwargs


def _inductor_system_key():
    """Inductor keys its caches on torch.cuda's device (codecache.CacheBase.get_system, computed
    once), which under the migration is biren, whose properties are not CUDA's: take the key as on
    a machine without CUDA before the first compile."""
    from torch._inductor.codecache import CacheBase

    props = torch.cuda.get_device_properties

    def no_cuda(*args, **kwargs):
        raise RuntimeError("no CUDA device under the biren migration")

    torch.cuda.get_device_properties = no_cuda
    try:
        CacheBase.get_system()
    finally:
        torch.cuda.get_device_properties = props


def _compile(orig):
    """torch.compile on 'cuda' is torch.compile on biren: Inductor with biren's backend
    (torch_biren/inductor). For the CPU reference run (--to cpu) the default backend returns the
    model, run eagerly (one warning): there torch.cuda is a stand-in without the device properties
    Inductor's CPU path consults. An explicit backend (e.g. 'aot_eager', a callable) is honoured."""
    warned = []

    @functools.wraps(orig)
    def compile(model=None, *, backend="inductor", **kwargs):
        if backend == "inductor" and not kwargs.get("disable"):
            if state.target == "cpu":
                if not warned:
                    warned.append(True)
                    import warnings

                    warnings.warn("torch_biren CUDA migration (--to cpu): torch.compile runs the model eagerly",
                                  UserWarning, stacklevel=2)
                return model if model is not None else (lambda m: m)
            _inductor_system_key()
        return orig(model, backend=backend, **kwargs) if model is not None else orig(backend=backend, **kwargs)

    return compile


def _backend_name(backend):
    """'nccl' -> 'bccl'; 'cpu:gloo,cuda:nccl' -> 'cpu:gloo,biren:bccl' (gloo when the target is the CPU)."""
    if not isinstance(backend, str):
        return backend
    new = "gloo" if state.target == "cpu" else "bccl"
    parts = []
    for part in backend.split(","):
        dev, sep, name = part.rpartition(":")
        name = new if name.strip().lower() == "nccl" else name
        parts.append(f"{map_type(dev)}{sep}{name}")
    mapped = ",".join(parts)
    if "bccl" in mapped and "bccl" not in torch.distributed.Backend.backend_list:
        raise RuntimeError(
            f"backend {backend!r} maps to biren's collective backend 'bccl' under the CUDA migration, and no "
            "'bccl' backend is registered in this torch_biren build: multi-device collectives are not available "
            "yet. Run one process (no init_process_group), or use backend='gloo' for CPU tensors."
        )
    return mapped


def _map_backend(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if args:
            args = (_backend_name(args[0]), *args[1:])
        if "backend" in kwargs:
            kwargs["backend"] = _backend_name(kwargs["backend"])
        return fn(*args, **kwargs)

    return wrapper


# --- torch.cuda for the two targets ---------------------------------------------------------------

def _biren_cuda_names():
    """torch.cuda name -> torch.biren object, for every public name both modules have."""
    biren = torch.biren
    names = {}
    for name in dir(biren):
        if name.startswith("_") or name in ("amp", "memory", "random", "streams", "torch"):
            continue
        if hasattr(torch.cuda, name):
            names[name] = getattr(biren, name)
            if callable(names[name]) and not isinstance(names[name], type):
                names[name] = _map_all(names[name])
    names.update(
        is_current_stream_capturing=lambda: False,
        get_arch_list=lambda: [],
        ipc_collect=lambda: None,
        memory_cached=biren.memory_reserved,
        max_memory_cached=biren.max_memory_reserved,
        reset_max_memory_allocated=biren.reset_peak_memory_stats,
        reset_max_memory_cached=biren.reset_peak_memory_stats,
        is_tf32_supported=lambda: True,  # BR1xx matrix engines have TF32
        default_generators=tuple(biren.default_generators),
        _lazy_init=biren._lazy_init,
        _is_in_bad_fork=biren._is_in_bad_fork,
    )
    return names


class _CpuEvent:
    """torch.cuda.Event for the CPU reference run: host wall time."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False, external=False):
        self.t = None

    def record(self, stream=None):
        self.t = time.perf_counter()

    def synchronize(self):
        pass

    def wait(self, stream=None):
        pass

    def query(self):
        return True

    def elapsed_time(self, end):
        return (end.t - self.t) * 1000.0


def _cpu_stream(device=None, priority=0, **kwargs):
    """torch.cuda.Stream for the CPU reference run (torch.cpu.Stream takes no device)."""
    return torch.cpu.Stream(priority=priority)


def _cpu_cuda_names():
    """torch.cuda as seen by a CUDA script run as a CPU reference: one device, host RNG, no memory."""
    noop = lambda *a, **k: None  # noqa: E731
    zero = lambda *a, **k: 0  # noqa: E731
    seed_cpu = lambda seed: torch.default_generator.manual_seed(int(seed))  # noqa: E731
    return dict(
        is_available=lambda: True, device_count=lambda: 1, current_device=lambda: 0, set_device=noop,
        synchronize=noop, empty_cache=noop, is_initialized=lambda: True, init=noop, _lazy_init=noop,
        is_bf16_supported=lambda *a, **k: True, is_tf32_supported=lambda: False,
        # the 'cuda' generator is the CPU's; torch.manual_seed calls torch.cuda.manual_seed_all itself
        manual_seed=seed_cpu, manual_seed_all=seed_cpu, seed=noop, seed_all=noop, _is_in_bad_fork=lambda: False,
        initial_seed=torch.initial_seed, get_rng_state=lambda device=None: torch.get_rng_state(),
        set_rng_state=lambda new_state, device=None: torch.set_rng_state(new_state),
        get_rng_state_all=lambda: [torch.get_rng_state()],
        set_rng_state_all=lambda new_states: torch.set_rng_state(new_states[0]),
        memory_allocated=zero, max_memory_allocated=zero, memory_reserved=zero, max_memory_reserved=zero,
        memory_cached=zero, max_memory_cached=zero, reset_peak_memory_stats=noop, reset_max_memory_allocated=noop,
        reset_accumulated_memory_stats=noop, memory_stats=lambda *a, **k: {}, memory_summary=lambda *a, **k: "",
        get_device_name=lambda device=None: "CPU (reference run)", get_device_capability=lambda device=None: (0, 0),
        is_current_stream_capturing=lambda: False, get_arch_list=lambda: [], ipc_collect=noop,
        Event=_CpuEvent, Stream=_cpu_stream, current_stream=torch.cpu.current_stream,
        default_stream=torch.cpu.current_stream, stream=torch.cpu.stream,
        default_generators=(torch.default_generator,),
    )  # fmt: skip


# --- enable / disable -----------------------------------------------------------------------------


def apply(target):
    """Installs every patch for `target` ('biren' or 'cpu'), all or none. The caller checks idempotence."""
    state.target = target
    try:
        _apply(target)
    except BaseException:
        remove()
        raise


def _apply(target):
    # `with torch.device(...)` recognises factories by identity: fill its cache with the originals first.
    torch.utils._device._device_constructors()

    # torch.device / torch.Generator: callables returning the real objects, with 'cuda' mapped.
    _patch(torch, "device", _device_proxy())
    _patch(torch, "Generator", _generator_proxy())
    _patch_dict(copyreg.dispatch_table, _REAL_DEVICE, _reduce_device)

    for name in FACTORIES:
        if hasattr(torch, name):
            _patch(torch, name, _map_kw(getattr(torch, name)))
    _patch(torch, "set_default_device", _map_all(torch.set_default_device))

    T = torch.Tensor
    _patch(T, "to", _tensor_to(T.to))
    for name in TENSOR_METHODS_DEVICE_KW:
        _patch(T, name, _map_kw(getattr(T, name)))
    _patch(T, "pin_memory", _map_all(T.pin_memory))
    _patch(T, "is_pinned", _map_all(T.is_pinned))
    _patch(T, "cuda", _tensor_cuda)
    _patch(T, "is_cuda", property(_is_cuda, doc="True for tensors on the migration's target device."))

    M = torch.nn.Module
    _patch(M, "to", _map_all(M.to))
    _patch(M, "to_empty", _map_kw(M.to_empty))
    _patch(M, "cuda", _module_cuda)

    _patch(torch, "compile", _compile(torch.compile))

    _patch(torch, "load", _load(torch.load))
    _patch(torch.serialization, "load", torch.load)

    # autocast / GradScaler: the classes stay, their __init__ maps 'cuda' (subclasses such as
    # torch.cuda.amp.autocast/GradScaler pass 'cuda' up and are mapped too).
    _init_patch(torch.amp.autocast_mode.autocast, _autocast_args)
    _init_patch(torch.amp.GradScaler, _scaler_args)
    for name in ("is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled", "set_autocast_dtype"):
        _patch(torch, name, _map_type_arg(getattr(torch, name), "device_type"))
    _patch(torch.amp, "is_autocast_available", _map_type_arg(torch.amp.is_autocast_available, "device_type"))
    _patch(torch.amp.autocast_mode, "is_autocast_available", torch.amp.is_autocast_available)
    for name in ("custom_fwd", "custom_bwd"):  # device_type is keyword-only; map_device('cuda') is the type
        _patch(torch.amp, name, _map_kw(getattr(torch.amp, name), ("device_type",)))
    _init_patch(torch.utils.data.DataLoader, _dataloader_args)

    if torch.distributed.is_available():
        import torch.distributed.device_mesh as dm

        dist = torch.distributed
        _patch(dist, "init_process_group", _map_backend(dist.init_process_group))
        _patch(dist.distributed_c10d, "init_process_group", dist.init_process_group)
        _patch(dist, "new_group", _map_backend(dist.new_group))
        _patch(dm, "init_device_mesh", _map_type_arg(dm.init_device_mesh, "device_type"))
        if hasattr(dist, "init_device_mesh"):
            _patch(dist, "init_device_mesh", dm.init_device_mesh)
        _init_patch(dm.DeviceMesh, lambda a, k: ((map_type(a[0]), *a[1:]) if a else a,
                                                 {**k, **({"device_type": map_type(k["device_type"])}
                                                          if "device_type" in k else {})}))

    names = _cpu_cuda_names() if target == "cpu" else _biren_cuda_names()
    seen = set()
    for name, value in names.items():
        if callable(value) and not isinstance(value, type):
            # one object per name: torch._dynamo's rule table rejects one function under two names
            value = _distinct(value) if id(value) in seen else value
            seen.add(id(value))
        _patch(torch.cuda, name, value)
    nvtx = torch.cuda.nvtx  # no profiler ranges on the simulated device: no-ops, as on a build without NVTX
    for name in ("range_push", "range_pop", "mark"):
        _patch(nvtx, name, lambda *a, **k: 0)
    _patch(nvtx, "range", lambda *a, **k: contextlib.nullcontext())


def remove():
    while state.undo:
        state.undo.pop()()
    state.target = None
