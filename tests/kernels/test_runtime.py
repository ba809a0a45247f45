import os
import subprocess
import sys

import pytest
import torch
import triton.language as tl
from triton.runtime.jit import JITFunction

from torch_biren.kernels.runtime import Kernel, from_f32, row_layout, tile_mode, to_f32


def _round_trip_kernel(x_ptr, y_ptr, z_ptr, N, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < N, other=0.0)
    tl.store(y_ptr + offs, from_f32(x, tl.bfloat16, True), mask=offs < N)
    y = tl.load(y_ptr + offs, mask=offs < N, other=0.0)
    tl.store(z_ptr + offs, to_f32(y, True) + tl.zeros((BLOCK, ), dtype=tl.float32), mask=offs < N)


_round_trip = Kernel(_round_trip_kernel)


def test_bfloat16_conversions_round_to_nearest_even():
    x = torch.tensor([1.0, 1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8 + 2**-20), 3.0e38, float("inf"), float("-inf"),
                      float("nan"), 1e-40, -0.0, 65504.0])
    y, z = torch.empty(x.shape, dtype=torch.bfloat16), torch.empty(x.shape)
    _round_trip.cpu((1, ), x, y, z, x.numel(), BLOCK=16)
    torch.testing.assert_close(y, x.bfloat16(), equal_nan=True, atol=0, rtol=0)
    torch.testing.assert_close(z, x.bfloat16().float(), equal_nan=True, atol=0, rtol=0)


def test_interpreted_launch_leaves_triton_untouched():
    before = (JITFunction.__call__, tl.core.full, tl.full, tl.core.tensor.__add__, tl.math.exp, tl.core.reduce)
    x = torch.randn(5)
    _round_trip.cpu((1, ), x, torch.empty(5, dtype=torch.bfloat16), torch.empty(5), 5, BLOCK=8)
    assert before == (JITFunction.__call__, tl.core.full, tl.full, tl.core.tensor.__add__, tl.math.exp,
                      tl.core.reduce)


_CHECK = """
import torch
from torch_biren.kernels import attention_fwd, mm, rms_norm_fwd
a, b = torch.randn(9, 20), torch.randn(20, 7)
out = torch.empty(9, 7)
mm(a, b, out)
torch.testing.assert_close(out, a @ b)
x = torch.randn(3, 16)
y = torch.empty_like(x)
rms_norm_fwd(x, None, y, eps=1e-6)
torch.testing.assert_close(y, torch.nn.functional.rms_norm(x, (16,), eps=1e-6))
q = torch.randn(1, 2, 5, 16)
o, lse = torch.empty_like(q), torch.empty(1, 2, 5)
attention_fwd(q, q, q, o, lse, causal=True)
torch.testing.assert_close(o, torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True))
print("ok")
"""


@pytest.mark.parametrize("interpret", ["1", "0"])
def test_independent_of_triton_interpret(interpret):
    # CPU tensors are interpreted whatever TRITON_INTERPRET says (triton.jit itself would follow it)
    env = dict(os.environ, TRITON_INTERPRET=interpret)
    run = subprocess.run([sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]


def test_row_layout_merges_what_strides_allow():
    x = torch.empty(2, 3, 4, 5)
    assert row_layout(x) == ((1, 1, 24), [(0, 0, 5, 1)])
    assert row_layout(x.transpose(1, 2)) == ((2, 4, 3), [(60, 5, 20, 1)])
    assert row_layout(x, torch.empty(2, 3, 4, 1)) == ((1, 1, 24), [(0, 0, 5, 1), (0, 0, 1, 0)])
    with pytest.raises(ValueError):
        row_layout(torch.empty(2, 3, 4, 5, 6).permute(0, 2, 1, 3, 4)[:, :, :, ::2])


def test_tile_mode():
    x = torch.empty(64, 64)
    assert tile_mode(x, 64, 64, 64, 1) == (1, 1)
    assert tile_mode(x, 64, 64, 64, 1, tile=1 << 16) == (1, 2)  # big tiles move 64-bit words
    assert tile_mode(x.T, 64, 64, 1, 64) == (2, 1)
    assert tile_mode(x[:, 1:], 64, 63, 64, 1) == (0, 1)  # base not 16-byte aligned
    assert tile_mode(x[:, ::2], 64, 32, 64, 2) == (0, 1)
    assert tile_mode(torch.empty(64, 63, dtype=torch.bfloat16), 64, 63, 63, 1) == (0, 1)
