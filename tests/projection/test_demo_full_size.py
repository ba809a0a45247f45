"""The demo's last paragraph (commands/demo.py): the full-size model its tiny qwen2 stands for,
projected on 8 BR166 beside 8 H100, fitting memory."""

from torch_biren.commands import demo


def test_demo_ends_with_the_full_size_projection_on_both_chips():
    text = demo._full_size("BR166")
    lines = text.splitlines()
    assert lines[0].startswith("Projection of the full-size model: Qwen2.5-7B training on 8 cards (dp 4 x tp 2)")
    assert lines[1].lstrip().startswith("BR166 (UMA)") and lines[2].lstrip().startswith("H100")
    assert all("(fits)" in line for line in lines[1:3])
    assert "BR166 / H100 throughput:" in lines[3]
