"""docs/user-guide.md: its support matrix and chip table are generated from the code and must match
it; every environment variable the code reads is documented."""

import re
from pathlib import Path

import torch

from torch_biren import docs
from torch_biren.ops import PYTHON_OPS
from torch_biren.sim import modelled_ops

ROOT = Path(__file__).parent.parent
GUIDE = ROOT / "docs" / "user-guide.md"


def test_generated_sections_are_current():
    text = GUIDE.read_text(encoding="utf-8")
    assert docs.replace_sections(text) == text, "run: python -m torch_biren.docs --write docs/user-guide.md"
    assert docs.main(["--check", str(GUIDE)]) == 0


def test_matrix_is_the_registries():
    cats = docs.classify()
    aten = [n for n in torch._C._dispatch_get_all_op_names() if n.startswith("aten::")]
    assert sorted(cats) == sorted(aten)  # every overload, in exactly one category
    for op in PYTHON_OPS:
        assert cats[f"aten::{op}"] == "triton", op
    for op in modelled_ops():
        if op in cats and f"{op}" not in docs.triton_ops():
            assert cats[op] != "fallback", (op, cats[op])  # a cost formula is never the generic one
    section = docs.render()
    total = re.search(r"\| \*\*all\*\* \| (.*) \|", section).group(1)
    assert sum(int(x.strip("* ")) for x in total.split("|")) == len(aten)
    assert cats["aten::add.Tensor"] == "fallback" and cats["aten::_to_sparse"] == "unsupported"
    assert docs.module_of("aten::linalg_svd") == "torch.linalg" and docs.module_of("aten::_fft_r2c") == "torch.fft"


def test_chip_table_lists_every_quantity():
    section = docs.render_chip()
    for key in ("memory_bytes", "matrix_flops.bf16", "die_link_Bps", "host_issue_ns"):
        assert f"| `{key}` |" in section
    assert "| `memory_bytes` | 65,024 MiB | R |" in section


def test_every_environment_variable_is_documented():
    guide = GUIDE.read_text(encoding="utf-8")
    code = [p.read_text(encoding="utf-8", errors="replace") for p in
            [*(ROOT / "torch_biren").rglob("*.py"), *(ROOT / "csrc").rglob("*.cpp"), *(ROOT / "csrc").rglob("*.h")]]
    names = set()
    for text in code:
        names.update(re.findall(r"\b((?:TORCH_BIREN|BIREN)_[A-Z0-9_]*[A-Z0-9])\b", text))
    missing = sorted(n for n in names if f"`{n}`" not in guide)
    assert not missing, f"environment variables read by the code but not in docs/user-guide.md: {missing}"
