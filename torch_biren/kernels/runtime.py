"""Run each Triton kernel interpreted for CPU tensors and compiled for CUDA tensors.

`triton.jit` picks one of the two once, from TRITON_INTERPRET at decoration time. Here both forms
are built from the raw function and each launch picks from the tensors' device, so the user's
environment never matters. Interpreted launches run Triton's interpreter directly on the tensors'
data pointers (host memory), so unlike the stock launcher nothing is copied in or out.
"""

import ctypes
import dataclasses
import functools
import glob
import inspect
import itertools
import os
import threading

import numpy as np

import triton
import triton.language as tl
from triton.runtime import interpreter as _interp
from triton.runtime.jit import JITFunction

__all__ = ["Kernel", "device_fn", "on_gpu", "next_pow2", "row_layout", "tile_mode", "load_tile", "store_tile",
           "to_f32", "from_f32"]


def device_fn(fn):
    """A helper callable from kernels in both modes (plain triton.jit would follow TRITON_INTERPRET)."""
    return JITFunction(fn)


_rewritten = {}


def _call_interpreted(jit_fn, *args, **kwargs):
    # Stands in for JITFunction.__call__ while interpreting: Triton's library functions (tl.zeros,
    # tl.sum, ...) and our device_fn helpers are JITFunctions, which otherwise refuse to be called.
    fn = _rewritten.get(jit_fn.fn)
    if fn is None:
        fn = _rewritten[jit_fn.fn] = _interp.InterpretedFunction(jit_fn.fn).rewrite()
    return fn(*args, **kwargs)


class _LangPatch:
    """What the interpreter patches into triton.language, computed once and replayed per launch.

    The stock launcher patches only the modules a kernel names (tl), not triton.language.core
    that Triton's library functions use, and rebuilding the patch costs ~0.5 ms per module.
    """

    def __init__(self):
        scope = _interp._patch_lang(tl.standard.zeros.fn)  # triton.language.core
        inner = _interp._patch_lang(_call_interpreted)  # triton.language, as named by kernels
        scope.set_attr(JITFunction, "__call__", _call_interpreted)
        # Signed adds and multiplies otherwise get an int64 overflow check each (compiled code wraps).
        builder = _interp.interpreter_builder
        scope.set_attr(builder, "options", dataclasses.replace(builder.options, sanitize_overflow=False))
        originals = {}
        for obj, name, original in scope._changes + inner._changes:
            originals.setdefault((obj, name), original)
        self._plan = [(obj, name, getattr(obj, name), original) for (obj, name), original in originals.items()]
        inner.restore()
        scope.restore()

    def apply(self):
        for obj, name, patched, _ in self._plan:
            setattr(obj, name, patched)

    def restore(self):
        for obj, name, _, original in reversed(self._plan):
            if original is _interp._MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, original)


# The interpreter keeps the grid position and the patched triton.language in globals. Everything
# that touches them, the one-time set-up included, runs under this lock: building the patch applies
# and restores it on the live modules, so a launch running meanwhile would lose its patch.
_interp_lock = threading.Lock()


@functools.cache
def _lang_patch():
    """The patch, built on first use; call with _interp_lock held."""
    return _LangPatch()


@functools.cache
def _blas_threads_setter():
    """numpy's OpenBLAS call setting the calling thread's BLAS thread count, or None."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libscipy_openblas*")
    for path in glob.glob(libs):
        try:
            setter = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.argtypes, setter.restype = [ctypes.c_int], ctypes.c_int
        return setter
    return None


class Kernel:
    """A Triton kernel with an interpreted form (CPU tensors) and a compiled, autotuned one (CUDA)."""

    def __init__(self, fn, gpu_configs=(), gpu_key=()):
        self.fn = fn
        self._interpreted = _interp.InterpretedFunction(fn)
        self._constexprs = {n for n, a in inspect.get_annotations(fn).items() if a is tl.constexpr}
        self._gpu_configs = list(gpu_configs)
        self._gpu_key = list(gpu_key)

    @functools.cached_property
    def compiled(self):
        jitted = JITFunction(self.fn)
        if not self._gpu_configs:
            return jitted
        return triton.autotune(configs=self._gpu_configs, key=self._gpu_key)(jitted)

    def cpu(self, grid, *args, blas_threads=1, **kwargs):
        """Interpret every program of `grid` on the tensors in place (their memory must be host memory).

        tl.dot runs numpy.matmul: blas_threads=None leaves OpenBLAS its threads, worth it for big
        blocks only; on small ones thread hand-offs (and busy cores) cost far more than they gain.
        """
        bound = inspect.getcallargs(self.fn, *args, **kwargs)
        grid = tuple(grid) + (1, ) * (3 - len(grid))
        set_threads = _blas_threads_setter() if blas_threads else None
        # Compiled kernels overflow to inf and divide by zero silently; numpy under the interpreter warns.
        with _interp_lock, np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            fn = self._interpreted.rewrite()  # first call: rewrites the source, adds to its module's globals
            patch = _lang_patch()
            patch.apply()
            previous = set_threads(blas_threads) if set_threads else None
            try:
                bound = {k: v if k in self._constexprs else _interp._implicit_cvt(v) for k, v in bound.items()}
                _interp.interpreter_builder.set_grid_dim(*grid)
                for idx in itertools.product(*map(range, grid)):
                    _interp.interpreter_builder.set_grid_idx(*idx)
                    fn(**bound)
            finally:
                if set_threads:
                    set_threads(previous)
                patch.restore()

    def gpu(self, grid, *args, **kwargs):
        """Compiled launch; `grid` may be a function of the chosen meta-parameters."""
        self.compiled[grid](*args, **kwargs)


def on_gpu(t):
    return t.device.type == "cuda"


def next_pow2(n):
    return 1 << max(0, int(n) - 1).bit_length()


def row_layout(*tensors):
    """Leading dims of tensors shaped [..., C], merged as far as every tensor's strides allow.

    Returns (R0, R1, R2) and per tensor (s0, s1, s2, stride of C): row (i, j, k) of a tensor
    starts at i * s0 + j * s1 + k * s2. Raises ValueError past three unmergeable groups of dims.
    """
    groups = []  # innermost first: [size, strides per tensor]
    for d in reversed(range(tensors[0].dim() - 1)):
        size = tensors[0].shape[d]
        if size == 1:
            continue
        strides = [t.stride(d) for t in tensors]
        if groups and all(s == gs * groups[-1][0] for s, gs in zip(strides, groups[-1][1])):
            groups[-1][0] *= size
        else:
            groups.append([size, strides])
    if len(groups) > 3:
        raise ValueError(f"leading dims of {tuple(tensors[0].shape)} with these strides do not flatten to 3 levels")
    groups += [[1, [0] * len(tensors)]] * (3 - len(groups))
    sizes = tuple(g[0] for g in reversed(groups))
    last = [t.stride(-1) if t.shape[-1] != 1 else 0 for t in tensors]
    return sizes, [(*(g[1][i] for g in reversed(groups)), last[i]) for i in range(len(tensors))]


def tile_mode(t, rows, cols, s_r, s_c, extra_strides=(), tile=0):
    """(MODE, PACK) for interpreted access to a rows x cols matrix of `t` in tiles of `tile` elements.

    Tensor descriptors load ~1.4x faster than pointer arithmetic under the interpreter but need a
    unit stride, 16-byte aligned base and strides. The interpreter gathers element by element
    (~13 ns each), so from ~64K-element tiles on, PACK > 1 moves 64-bit words holding PACK elements
    and unpacks them (the packed dim must divide evenly; bfloat16 unpacks to float32).
    extra_strides: batch strides added to t.
    """
    size = t.element_size()
    aligned = t.data_ptr() % 16 == 0 and all(s * size % 16 == 0 for s in extra_strides)
    if aligned and s_c == 1 and s_r * size % 16 == 0:
        mode, inner = 1, cols
    elif aligned and s_r == 1 and s_c * size % 16 == 0:
        mode, inner = 2, rows
    else:
        return 0, 1
    pack = 8 // size if tile >= 1 << 16 and size < 8 and inner % (8 // size) == 0 else 1
    return mode, pack


@device_fn
def _unpack(w, DT: tl.constexpr, PACK: tl.constexpr):
    # Little endian: element j of a word sits in bits [j * 64 / PACK, (j + 1) * 64 / PACK).
    if PACK == 2:
        x = tl.join(w.to(tl.int32).to(DT, bitcast=True), (w >> 32).to(tl.int32).to(DT, bitcast=True))
    elif DT == tl.bfloat16:  # straight to float32, whose top half a bfloat16 is
        lo = w.to(tl.int32)
        hi = (w >> 32).to(tl.int32)
        x = tl.join(tl.join(lo << 16, hi << 16), tl.join(lo & -65536, hi & -65536)).to(tl.float32, bitcast=True)
    else:
        e0 = w.to(tl.int16).to(DT, bitcast=True)
        e1 = (w >> 16).to(tl.int16).to(DT, bitcast=True)
        e2 = (w >> 32).to(tl.int16).to(DT, bitcast=True)
        e3 = (w >> 48).to(tl.int16).to(DT, bitcast=True)
        x = tl.join(tl.join(e0, e2), tl.join(e1, e3))
    return x


@device_fn
def _pack(x, BR: tl.constexpr, BC: tl.constexpr, PACK: tl.constexpr):
    if PACK == 2:
        lo, hi = x.reshape(BR, BC // 2, 2).split()
        w = lo.to(tl.int32, bitcast=True).to(tl.uint32).to(tl.int64)
        w = w | (hi.to(tl.int32, bitcast=True).to(tl.int64) << 32)
    else:
        p, q = x.reshape(BR, BC // 4, 2, 2).split()
        e0, e2 = p.split()
        e1, e3 = q.split()
        w = e0.to(tl.int16, bitcast=True).to(tl.uint16).to(tl.int64)
        w = w | (e1.to(tl.int16, bitcast=True).to(tl.uint16).to(tl.int64) << 16)
        w = w | (e2.to(tl.int16, bitcast=True).to(tl.uint16).to(tl.int64) << 32)
        w = w | (e3.to(tl.int16, bitcast=True).to(tl.int64) << 48)
    return w


@device_fn
def _row_major_desc(ptr, R, C, s_r, BR: tl.constexpr, BC: tl.constexpr, PACK: tl.constexpr):
    if PACK == 1:
        d = tl.make_tensor_descriptor(ptr, [R, C], [s_r, 1], [BR, BC])
    else:
        d = tl.make_tensor_descriptor(ptr.to(tl.pointer_type(tl.int64)), [R, C // PACK], [s_r // PACK, 1],
                                      [BR, BC // PACK])
    return d


@device_fn
def _load_row_major(ptr, R, C, s_r, off_r, off_c, BR: tl.constexpr, BC: tl.constexpr, PACK: tl.constexpr):
    d = _row_major_desc(ptr, R, C, s_r, BR, BC, PACK)
    if PACK == 1:
        x = d.load([off_r, off_c])
    else:
        x = _unpack(d.load([off_r, off_c // PACK]), ptr.dtype.element_ty, PACK).reshape(BR, BC)
    return x


@device_fn
def load_tile(ptr, R, C, s_r, s_c, off_r, off_c, BR: tl.constexpr, BC: tl.constexpr, MODE: tl.constexpr,
              PACK: tl.constexpr):
    """The [BR, BC] tile at (off_r, off_c) of an R x C matrix, zero outside it.

    MODE 0: pointer arithmetic, any strides (GPU, odd layouts). MODE 1: descriptor, s_c == 1.
    MODE 2: descriptor over the transpose, s_r == 1. PACK: see tile_mode (interpreter only).
    """
    if MODE == 0:
        r = off_r + tl.arange(0, BR)
        c = off_c + tl.arange(0, BC)
        x = tl.load(ptr + r[:, None] * s_r + c[None, :] * s_c, mask=(r[:, None] < R) & (c[None, :] < C), other=0.0)
    elif MODE == 1:
        x = _load_row_major(ptr, R, C, s_r, off_r, off_c, BR, BC, PACK)
    else:
        x = tl.trans(_load_row_major(ptr, C, R, s_c, off_c, off_r, BC, BR, PACK))
    return x


@device_fn
def store_tile(ptr, x, R, C, s_r, s_c, off_r, off_c, BR: tl.constexpr, BC: tl.constexpr, MODE: tl.constexpr,
               PACK: tl.constexpr):
    """Store the [BR, BC] tile x at (off_r, off_c) of an R x C matrix, dropping what falls outside."""
    if MODE == 0:
        r = off_r + tl.arange(0, BR)
        c = off_c + tl.arange(0, BC)
        tl.store(ptr + r[:, None] * s_r + c[None, :] * s_c, x, mask=(r[:, None] < R) & (c[None, :] < C))
    elif MODE == 1:
        d = _row_major_desc(ptr, R, C, s_r, BR, BC, PACK)
        if PACK == 1:
            d.store([off_r, off_c], x)
        else:
            d.store([off_r, off_c // PACK], _pack(x, BR, BC, PACK))
    else:
        d = _row_major_desc(ptr, C, R, s_c, BC, BR, PACK)
        if PACK == 1:
            d.store([off_c, off_r], tl.trans(x))
        else:
            d.store([off_c, off_r // PACK], _pack(tl.trans(x), BC, BR, PACK))


@device_fn
def to_f32(x, CPU: tl.constexpr):
    """x as float32. The interpreter's own bfloat16 conversion is slow (and truncates on the way back)."""
    if CPU:
        if x.dtype == tl.bfloat16:
            y = (x.to(tl.int16, bitcast=True).to(tl.int32) << 16).to(tl.float32, bitcast=True)
        else:
            y = x.to(tl.float32)
    else:
        y = x.to(tl.float32)
    return y


@device_fn
def from_f32(x, DT: tl.constexpr, CPU: tl.constexpr):
    """float32 x as DT, rounding to nearest even."""
    if CPU:
        if DT == tl.bfloat16:
            b = x.to(tl.uint32, bitcast=True)
            b = b + (0x7FFF + ((b >> 16) & 1))
            y = tl.where(x == x, b >> 16, 0x7FC0).to(tl.uint16).to(tl.bfloat16, bitcast=True)
        else:
            y = x.to(DT)
    else:
        y = x.to(DT)
    return y
