"""accelerate on biren (written against accelerate 1.x).

accelerate's only generic device hook is ACCELERATE_TORCH_DEVICE; with it a single process runs on
biren as it is. What it still hard-codes, and what this adapter does about it:

1. Several processes (`accelerate launch`, torchrun: LOCAL_RANK is set): `PartialState` picks a
   collective backend only for devices it knows, so with ACCELERATE_TORCH_DEVICE=biren it would run
   each process alone. Adapted: backend 'bccl' (the biren collective backend), distributed type
   MULTI_GPU, and each process on card LOCAL_RANK (the env device names no index).
2. fp16 mixed precision: `Accelerator` accepts it only for a fixed tuple of device types, and its
   GradScaler is made for 'cuda' (disabled on a machine without CUDA). Adapted: 'biren' joins the
   tuple, and the scaler is `torch.amp.GradScaler('biren')`.
(bf16 needs nothing: accelerate asks `torch.autocast(device_type=state.device.type)`.)

Upstream change that would retire this: device-generic checks through `torch.accelerator`
(`current_accelerator()`, `device_count()`, `torch.amp.is_autocast_available(device.type)`,
`torch.amp.GradScaler(device.type)`) and the collective backend from
`torch.distributed.Backend.default_device_backend_map[device.type]`.
"""

import functools
import os

from . import register, selected

_FP16_DEVICES = ("xpu", "cuda", "npu", "xla", "mlu", "musa", "hpu", "sdaa", "mps")


def _supported(version):
    return (1, 0) <= version < (2,)


def _env_device_is_biren():
    return os.environ.get("ACCELERATE_TORCH_DEVICE", "").split(":")[0].strip() == "biren"


def _mark(fn):
    fn._torch_biren = True
    return fn


def _apply_state(module):
    cls = module.PartialState
    DistributedType = module.DistributedType
    if getattr(cls._prepare_backend, "_torch_biren", False):
        return
    prepare, set_device = cls._prepare_backend, cls.set_device

    @_mark
    @functools.wraps(prepare)
    def _prepare_backend(self, cpu=False, sagemaker_dp=False, backend=None):
        chosen, dist_type = prepare(self, cpu, sagemaker_dp, backend)
        if (dist_type == DistributedType.NO and not cpu and _env_device_is_biren()
                and int(os.environ.get("LOCAL_RANK", -1)) != -1):
            return backend or "bccl", DistributedType.MULTI_GPU
        return chosen, dist_type

    @_mark
    @functools.wraps(set_device)
    def _set_device(self):
        set_device(self)
        device = self.device
        if device is not None and device.type == "biren" and device.index is None and \
                self.distributed_type != DistributedType.NO:
            import torch

            self.device = torch.device("biren", self.local_process_index % torch.biren.device_count())
            torch.biren.set_device(self.device)

    cls._prepare_backend = _prepare_backend
    cls.set_device = _set_device


def _replace_const(code, old, new):
    consts = tuple(new if c == old else c for c in code.co_consts)
    return code.replace(co_consts=consts)


def _apply_accelerator(module):
    init = module.Accelerator.__init__
    if not getattr(init, "_torch_biren", False):
        if _FP16_DEVICES not in init.__code__.co_consts:
            raise RuntimeError("Accelerator.__init__ no longer lists fp16 devices as expected")
        # the tuple is a constant of the function: adding 'biren' to it is the whole change
        init.__code__ = _replace_const(init.__code__, _FP16_DEVICES, (*_FP16_DEVICES, "biren"))
        init._torch_biren = True
    scaler = module.get_grad_scaler
    if not getattr(scaler, "_torch_biren", False):

        @_mark
        @functools.wraps(scaler)
        def get_grad_scaler(distributed_type=None, **kwargs):
            if selected() and module.DistributedType.FSDP != distributed_type:
                import torch

                return torch.amp.GradScaler("biren", **kwargs)
            return scaler(distributed_type, **kwargs)

        module.get_grad_scaler = get_grad_scaler


def register_all():
    register("accelerate.PartialState", "accelerate.state", _apply_state, _supported, "accelerate")
    register("accelerate.Accelerator", "accelerate.accelerator", _apply_accelerator, _supported, "accelerate")
