"""`import torch_biren.transfer_to_biren` runs the rest of a CUDA script on the biren device.

The import enables the CUDA migration (torch_biren.migration): torch.cuda -> torch.biren, 'cuda'
devices -> biren, 'nccl' -> 'bccl'. `disable()` takes it back, `enable()` puts it on again. The same
happens at `import torch` with TORCH_BIREN_MIGRATE_CUDA=1 in the environment.
"""

from .migration import disable, enable, is_enabled, map_device

__all__ = ["enable", "disable", "is_enabled", "map_device"]

enable()
