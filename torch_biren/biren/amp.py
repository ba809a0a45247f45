"""torch.biren.amp: autocast and GradScaler bound to the biren device, as torch.cuda.amp is to CUDA."""

import torch


class autocast(torch.amp.autocast):
    def __init__(self, enabled=True, dtype=torch.bfloat16, cache_enabled=True):
        super().__init__("biren", enabled=enabled, dtype=dtype, cache_enabled=cache_enabled)


class GradScaler(torch.amp.GradScaler):
    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000, enabled=True):
        super().__init__("biren", init_scale, growth_factor, backoff_factor, growth_interval, enabled)
