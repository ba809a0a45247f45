"""The device work torch.compile itself issues while it compiles is the compiler's, not the
program's: the first compiled call counts and is charged exactly what every later call is."""

import contextlib
import warnings

import torch

import torch_biren
from torch_biren import _C


def _block():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 4).to("biren")  # its parameters need grad: AOTAutograd compiles a joint graph
    return torch.randn(8, 16, device="biren"), torch.compile(lambda t: torch.relu(lin(t)) * 2), lin


def _uncached():
    """A compile that runs Inductor's passes, not one loaded from the caches of an earlier run."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch._inductor.config.patch(fx_graph_cache=False))
    stack.enter_context(torch._functorch.config.patch(enable_autograd_cache=False))
    return stack


def _call(fn, x):
    """fn(x)'s program op counts, compile-time op counts and simulated time (ps) from an idle device."""
    torch.biren.synchronize()
    torch_biren.reset_op_counts()
    t0 = _C._sim_elapsed_ps(x.device.index)
    with _uncached():
        y = fn(x)
    torch.biren.synchronize()
    return y, torch_biren.op_counts(), _C._op_counts(compile_time=True), _C._sim_elapsed_ps(x.device.index) - t0


def test_first_compiled_call_counts_and_charges_what_the_second_does():
    torch._dynamo.reset()
    x, fn, _ = _block()
    _, first, compile_time, first_ps = _call(fn, x)
    _, second, second_compile_time, second_ps = _call(fn, x)
    # What the compile ran on the device: Inductor's constant folding of the joint graph's
    # uniform-value tensors computes each value with torch.full([1], v, device=...).item() (a fill and
    # a copy to the host, as on CUDA); once per process, FakeTensorMode's constant propagation runs
    # the torch.tensor(scale) of Inductor's attention patterns for real (a copy to the device and a
    # clone). None of it is the program's: no stream is charged for it (on a card it overlaps the
    # compile's seconds of host work, the stream idle), and op counts keep it apart.
    assert compile_time["aten::fill_.Scalar"] == {"fallback": 1} and compile_time["Memcpy DtoH"] == {"copy": 1}
    assert set(compile_time) <= {"aten::fill_.Scalar", "Memcpy DtoH", "Memcpy HtoD", "Memcpy DtoD"}, compile_time
    # Justified beyond the second call: nothing. The graph's GEMM and its fused kernel, on both.
    assert first == second, (first, second)
    assert sorted(first) == ["aten::addmm", "triton_poi_fused_mul_relu_threshold_backward_0"], first
    assert first_ps == second_ps
    assert second_compile_time == {}


def test_compile_time_work_is_exempt_from_the_fallback_policy():
    # The constant folding's fill has no device kernel; under "error" it would fail the compile (and
    # the eager fallback would then fail on relu), though the compiled graph runs no fallback op.
    torch._dynamo.reset()
    x, fn, lin = _block()
    prior = _C._fallback_policy()
    torch_biren.set_fallback_policy("error")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y, counts, compile_time, _ = _call(fn, x)
    finally:
        torch_biren.set_fallback_policy(prior)
    assert "fallback" in compile_time["aten::fill_.Scalar"]
    assert not any("fallback" in kinds for kinds in counts.values()), counts
    expected = torch.relu(torch.nn.functional.linear(x.cpu(), lin.weight.cpu(), lin.bias.cpu())) * 2
    torch.testing.assert_close(y.detach().cpu(), expected)


def test_device_work_after_the_compile_is_the_programs_again():
    x = torch.randn(4, device="biren")
    torch_biren.reset_op_counts()
    with torch_biren._compile.compiling():
        x.fill_(1.0)
    x.fill_(2.0)
    assert torch_biren.op_counts() == {"aten::fill_.Scalar": {"fallback": 1}}
    assert _C._op_counts(compile_time=True) == {"aten::fill_.Scalar": {"fallback": 1}}
    assert x.cpu().tolist() == [2.0] * 4


def test_first_training_step_counts_what_the_second_does():
    # The backward graph compiles on the first backward (AOTAutograd's lazy backward), inside it.
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.compile(torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4)).to("biren"))
    x = torch.randn(8, 16, device="biren")

    def step(x):
        model.zero_grad(set_to_none=True)  # both steps assign their gradients (a second would accumulate)
        model(x).square().mean().backward()

    _, first, _, first_ps = _call(step, x)
    _, second, _, second_ps = _call(step, x)
    assert first == second, (first, second)
    assert any(name.startswith("triton_") for name in first), first
    assert first_ps == second_ps
