"""Conformance with PyTorch's own OpInfo database: every op sample that runs on the CPU must give
the same result on biren (float32 and bfloat16). `make test` runs a representative slice;
`make conformance` (BIREN_CONFORMANCE=full) runs every op and every sample.

Samples are generated on biren, as PyTorch's device-type tests do, and copied to the CPU (whole
storages, so partial views stay partial views) for the reference. Not compared: sparse layouts
(unsupported: the device is dense-only, as its error says) and ops whose output is uninitialised
memory (empty and friends)."""

import dataclasses
import os
import unittest
import zlib

import pytest
import torch
from torch.testing._internal.common_methods_invocations import op_db
from torch.nn.modules.linear_cross_entropy_options import _AUTO_FALLBACK, LinearCrossEntropyOptions
from torch.utils._pytree import tree_flatten, tree_map

FULL = os.environ.get("BIREN_CONFORMANCE") == "full"
STRIDE, SAMPLES = (1, None) if FULL else (7, 3)
TOL = {torch.float32: dict(rtol=1.3e-6, atol=1e-5), torch.bfloat16: dict(rtol=1.6e-2, atol=1e-4)}
OPS = [op for op in op_db[::STRIDE]]
KNOWN_DEVIATIONS = {}  # (op name, dtype) -> why; none at present


def _pytorch_skips_compare_cpu(op, dtype):
    """The reason PyTorch's own device-vs-CPU test (TestCommon.test_compare_cpu) skips this op for
    any device, or None. Used only when biren and the CPU disagree: such ops (e.g. multi-head
    attention on ill-conditioned samples, "output is non-deterministic") are not expected to match
    the CPU on CUDA either."""
    for info in (*op.decorators, *op.skips):
        if not hasattr(info, "is_active") or not info.is_active("TestCommon", "test_compare_cpu", "biren", dtype, {}):
            continue
        for decorator in info.decorators:
            try:
                decorator(lambda *a: None)()
            except unittest.SkipTest as skip:
                return str(skip)
            except Exception:  # noqa: BLE001 - other decorators (expectedFailure, tolerances) are not skips
                continue
    return None


def _device_algorithm(sample):
    """Ops that pick their algorithm by device type run the CPU reference with the biren choice.
    linear_cross_entropy's chunked path resolves acc_policy="auto" per device: "accurate" on the CPU,
    "compact" (bf16 logits, CUDA's choice) on other devices, a 7% different bf16 result by design."""
    options = sample.kwargs.get("options")
    if isinstance(options, LinearCrossEntropyOptions) and options.acc_policy == "auto":
        sample.kwargs["options"] = dataclasses.replace(options, acc_policy=_AUTO_FALLBACK.acc_policy)
    return sample


def _to(x, device):
    return x.to(device) if isinstance(x, torch.Tensor) else x


def _to_cpu(t):
    if not isinstance(t, torch.Tensor) or t.device.type != "biren" or t.layout != torch.strided:
        return t
    storage = t.untyped_storage().cpu()
    out = torch.empty(0, dtype=t.dtype).set_(storage, t.storage_offset(), t.size(), t.stride())
    return out.requires_grad_(t.requires_grad) if t.is_leaf else out


def _cpu_device(v):
    is_biren = isinstance(v, (str, torch.device)) and str(v).startswith("biren")
    return torch.device("cpu") if is_biren else v


def _upcast(t):
    if isinstance(t, torch.Tensor) and t.dtype in (torch.bfloat16, torch.float32):
        return t.to(torch.float64)
    return t


def _assert_no_worse_than_cpu(got, ref, exact, rtol, atol):
    for g, r, e in zip(*(tree_flatten(x)[0] for x in (got, ref, exact))):
        if not isinstance(g, torch.Tensor) or not g.is_floating_point():
            torch.testing.assert_close(g, r, equal_nan=True, check_device=False, check_dtype=False)
            continue
        g, r, e = g.double(), r.double(), e.double()
        allowed = atol + rtol * e.abs() + 2 * (r - e).abs()
        err = (g - e).abs()
        bad = ~((err <= allowed) | (g.isnan() & e.isnan()) | (g == e))
        assert not bad.any(), f"device error {err[bad].max().item():.3g} exceeds {allowed[bad].min().item():.3g}"


def _names_biren(sample):
    leaves, _ = tree_flatten((sample.input, sample.args, sample.kwargs))
    return any((isinstance(x, torch.Tensor) and x.device.type == "biren") or
               (isinstance(x, (str, torch.device)) and str(x).startswith("biren")) for x in leaves)


def _uses_sparse(*objs):
    leaves, _ = tree_flatten(objs)
    return any(isinstance(t, torch.Tensor) and t.layout != torch.strided for t in leaves)


def _run(op, sample):
    return op(sample.input, *sample.args, **sample.kwargs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("op", OPS, ids=lambda op: f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name)
def test_op_matches_cpu(op, dtype):
    if dtype not in op.supported_dtypes("cpu"):
        pytest.skip("not supported on CPU")
    if "empty" in op.name:
        pytest.skip("output is uninitialised memory")
    if (op.name, dtype) in KNOWN_DEVIATIONS:
        pytest.xfail(KNOWN_DEVIATIONS[op.name, dtype])
    # Samples are random: seed per test so a failure reproduces on its own, whatever ran before.
    torch.manual_seed(zlib.crc32(f"{op.name}.{op.variant_test_name}.{dtype}".encode()))
    try:
        samples = list(op.sample_inputs("biren", dtype, requires_grad=False))
    except NotImplementedError as e:
        if "strided (dense)" in str(e):
            pytest.skip("sparse layouts are unsupported")
        raise
    checked = 0
    for i, dev_sample in enumerate(samples):
        if SAMPLES is not None and i >= SAMPLES:
            break
        if _uses_sparse(dev_sample.input, dev_sample.args, dev_sample.kwargs):
            continue
        sample = _device_algorithm(dev_sample.transform(_to_cpu))
        # Device arguments (factories, .to) name the CPU for the reference.
        sample.args = tuple(_cpu_device(a) for a in sample.args)
        sample.kwargs = {k: _cpu_device(v) for k, v in sample.kwargs.items()}
        try:
            torch.manual_seed(0)
            ref = _run(op, sample)
            torch.manual_seed(0)
            again = _run(op, sample)
        except Exception:  # noqa: BLE001 - the sample is invalid on CPU too
            continue
        if _uses_sparse(ref):
            continue
        try:
            torch.testing.assert_close(again, ref, equal_nan=True, rtol=0, atol=0)
        except (AssertionError, TypeError, ValueError, RuntimeError):
            continue  # nondeterministic on CPU itself (random ops, uninitialised memory)
        torch.manual_seed(0)
        got = _run(op, dev_sample)
        got_cpu = tree_map(lambda t: _to(t, "cpu"), got)
        explicit = dev_sample.kwargs.get("device")
        if _names_biren(dev_sample) and (explicit is None or str(explicit).startswith("biren")):
            for t in tree_flatten(got)[0]:
                if isinstance(t, torch.Tensor):
                    assert t.device.type == "biren", f"{op.name} returned a tensor on {t.device}"
        try:
            torch.testing.assert_close(got_cpu, ref, equal_nan=True, check_device=False, **TOL[dtype])
        except AssertionError:
            # Device kernels accumulate in another order (and bf16 in fp32, rounding once). Where the
            # two disagree, judge both against the op in higher precision, as precision tools do: the
            # device may be off by the tolerance plus twice the CPU's own error, no more.
            exact = _run(op, sample.transform(_upcast))
            try:
                _assert_no_worse_than_cpu(got_cpu, ref, exact, **TOL[dtype])
            except AssertionError as err:
                reason = _pytorch_skips_compare_cpu(op, dtype)
                if reason is None:
                    raise
                pytest.skip(f"PyTorch's own test_compare_cpu skips this op ({reason}); sample {i}: {err}")
        checked += 1
    if checked == 0:
        pytest.skip("no sample runs deterministically on CPU")
