"""torch_biren.kernels loads its kernel modules, and Triton with them, on first use of an entry
point: `import torch` (which autoloads torch_biren) does not import Triton."""

import subprocess
import sys

_CHECK = """
import sys
import torch
import torch_biren
from torch_biren import kernels
loaded = sorted(m for m in sys.modules if m == "triton" or m.startswith("torch_biren.kernels."))
print("after import:", loaded)
import torch_biren.kernels.rope  # a module named as its entry point: the entry point stays bound
print("rope:", type(kernels.rope).__name__, type(kernels.grouped_mm).__name__, callable(kernels.mm))
x = torch.randn(8, 8, device="biren")
torch.testing.assert_close((x @ x).cpu(), x.cpu() @ x.cpu())
print("ok")
"""


def test_import_torch_loads_no_kernel_module_nor_triton():
    run = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=300)
    lines = run.stdout.strip().splitlines()
    assert lines[:1] == ["after import: []"], run.stdout + run.stderr[-3000:]
    assert lines[1:] == ["rope: function function True", "ok"], run.stdout + run.stderr[-3000:]
