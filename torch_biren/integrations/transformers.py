"""transformers' TrainingArguments on biren (written against transformers 4.46-5.x).

1. `bf16=True` is refused unless `is_torch_bf16_gpu_available()`, which knows a fixed list of vendor
   modules (cuda, xpu, npu, ...). With biren selected it answers `torch.biren.is_bf16_supported()`.
2. A process that is not distributed counts `torch.cuda.device_count()` GPUs (`n_gpu`) and wraps
   the model in nn.DataParallel when there are several. Under the CUDA migration that count is the
   biren card count, and nn.DataParallel needs CUDA-only C++ (torch._C._scatter); on biren a
   Trainer process uses one device (`n_gpu` = 1), as every accelerate-launched process does.

Upstream change that would retire this: `is_torch_bf16_gpu_available()` asking
`torch.accelerator.current_accelerator()`'s device module (`torch.get_device_module(...)
.is_bf16_supported()`) instead of a list of vendors; `_setup_devices` using
`torch.accelerator.device_count()` and leaving DataParallel to CUDA.
"""

import functools

from . import register, selected


def _supported(version):
    return (4, 46) <= version < (6,)


def _bf16(orig):
    @functools.wraps(orig)
    def is_torch_bf16_gpu_available():
        if selected():
            import torch

            return torch.biren.is_bf16_supported()
        return orig()

    is_torch_bf16_gpu_available._torch_biren = True
    return is_torch_bf16_gpu_available


def _one_device(prop):
    orig = prop.func

    @functools.wraps(orig)
    def _setup_devices(self):
        device = orig(self)
        if device.type == "biren" and getattr(self, "_n_gpu", 1) != 1:
            from accelerate.utils import DistributedType

            if self.distributed_state is None or self.distributed_state.distributed_type == DistributedType.NO:
                self._n_gpu = 1
        return device

    new = functools.cached_property(_setup_devices)
    new.__set_name__(None, prop.attrname)
    new.func._torch_biren = True
    return new


def _apply_training_args(module):
    fn = module.is_torch_bf16_gpu_available
    if not getattr(fn, "_torch_biren", False):
        module.is_torch_bf16_gpu_available = _bf16(fn)
    cls = module.TrainingArguments
    prop = cls.__dict__["_setup_devices"]
    if not getattr(prop.func, "_torch_biren", False):
        cls._setup_devices = _one_device(prop)


def register_all():
    register("transformers.TrainingArguments", "transformers.training_args", _apply_training_args, _supported,
             "transformers")
