"""torch_biren.ops attention: HF's sdpa attention reaches the flash kernel."""

import torch

import torch_biren
from torch_biren.adapt import zoo


def B(t):
    return t.to("biren")


def test_hf_sdpa_attention_reaches_the_kernel():
    model = zoo.build("llama").to("biren")
    torch_biren.reset_op_counts()
    model(B(torch.randint(0, zoo.VOCAB, (1, 6))))
    assert "triton" in torch_biren.op_counts()["aten::_scaled_dot_product_fused_attention_overrideable"]
