"""DeepSpeed's accelerator interface for biren (imports deepspeed; torch_biren.integrations.deepspeed
installs it).

Modelled on DeepSpeed's own SUPA_Accelerator (Biren's next-generation plugin). What differs: no op
builders (DeepSpeed's fused CUDA/C++ ops have no biren build: use `torch_adam: true` or a torch
optimizer), no graphs, and collectives on 'bccl'.
"""

import torch
from deepspeed.accelerator.abstract_accelerator import DeepSpeedAccelerator


class _TensorType:
    """accel.FloatTensor(...) etc.: legacy typed constructors, making the tensor on the current biren card."""

    def __init__(self, dtype):
        self.dtype = dtype

    def __call__(self, *args):
        device = torch.device("biren", torch.biren.current_device())
        if len(args) == 1 and not isinstance(args[0], int):
            return torch.as_tensor(args[0], dtype=self.dtype, device=device)
        return torch.empty(*args, dtype=self.dtype, device=device)


class BirenAccelerator(DeepSpeedAccelerator):
    def __init__(self):
        self._name = "biren"
        self._communication_backend_name = "bccl"
        self._compile_backend = "inductor"

    # Streams are real (simulated timelines), so DeepSpeed may overlap communication with compute.
    def is_synchronized_device(self):
        return False

    def use_host_timers(self):
        return self.is_synchronized_device()

    def resolves_data_dependency(self):
        return self.is_synchronized_device()

    def handles_memory_backpressure(self):
        return self.is_synchronized_device()

    # Device APIs
    def device_name(self, device_index=None):
        return "biren" if device_index is None else f"biren:{device_index}"

    def device(self, device_index=None):
        return torch.device("biren", device_index)

    def set_device(self, device_index):
        torch.biren.set_device(device_index)

    def current_device(self):
        return torch.biren.current_device()

    def current_device_name(self):
        return f"biren:{torch.biren.current_device()}"

    def device_count(self):
        return torch.biren.device_count()

    def synchronize(self, device_index=None):
        return torch.biren.synchronize(device_index)

    # RNG
    def random(self):
        return torch.random

    def set_rng_state(self, new_state, device_index=None):
        if device_index is None:
            return torch.biren.set_rng_state(new_state)
        return torch.biren.set_rng_state(new_state, device_index)

    def get_rng_state(self, device_index=None):
        if device_index is None:
            return torch.biren.get_rng_state()
        return torch.biren.get_rng_state(device_index)

    def manual_seed(self, seed):
        return torch.biren.manual_seed(seed)

    def manual_seed_all(self, seed):
        return torch.biren.manual_seed_all(seed)

    def initial_seed(self):
        return torch.biren.initial_seed()

    def default_generator(self, device_index):
        return torch.biren.default_generators[device_index]

    # Streams / events
    @property
    def Stream(self):
        return torch.biren.Stream

    def stream(self, stream):
        return torch.biren.stream(stream)

    def current_stream(self, device_index=None):
        return torch.biren.current_stream(device_index)

    def default_stream(self, device_index=None):
        return torch.biren.default_stream(device_index)

    @property
    def Event(self):
        return torch.biren.Event

    # Memory
    def empty_cache(self):
        return torch.biren.empty_cache()

    def memory_allocated(self, device_index=None):
        return torch.biren.memory_allocated(device_index)

    def max_memory_allocated(self, device_index=None):
        return torch.biren.max_memory_allocated(device_index)

    def reset_max_memory_allocated(self, device_index=None):
        return torch.biren.reset_peak_memory_stats(device_index)

    def memory_cached(self, device_index=None):
        return torch.biren.memory_reserved(device_index)

    def max_memory_cached(self, device_index=None):
        return torch.biren.max_memory_reserved(device_index)

    def reset_max_memory_cached(self, device_index=None):
        return torch.biren.reset_peak_memory_stats(device_index)

    def memory_stats(self, device_index=None):
        return torch.biren.memory_stats(device_index)

    def reset_peak_memory_stats(self, device_index=None):
        return torch.biren.reset_peak_memory_stats(device_index)

    def memory_reserved(self, device_index=None):
        return torch.biren.memory_reserved(device_index)

    def max_memory_reserved(self, device_index=None):
        return torch.biren.max_memory_reserved(device_index)

    def total_memory(self, device_index=None):
        return torch.biren.get_device_properties(device_index).total_memory

    def available_memory(self, device_index=None):
        return torch.biren.mem_get_info(device_index)[0]

    # Data types (BR1xx has no FP64 units: float64 is emulated, so it is not listed)
    def is_bf16_supported(self):
        return torch.biren.is_bf16_supported()

    def is_fp16_supported(self):
        return True

    def supported_dtypes(self):
        return [torch.float, torch.half, torch.bfloat16]

    # Misc
    def is_available(self):
        return torch.biren.is_available()

    def range_push(self, msg, domain=None, category=None):
        return None

    def range_pop(self, domain=None):
        return None

    def lazy_call(self, callback):
        return callback()

    def communication_backend_name(self):
        return self._communication_backend_name

    def is_triton_supported(self):
        return False  # DeepSpeed's Triton kernels target CUDA; torch_biren runs its own

    # Graphs: not on the simulated device
    def create_graph(self):
        return None

    def capture_to_graph(self, graph, pool=None, stream=None):
        from contextlib import nullcontext

        return nullcontext()

    def replay_graph(self, graph):
        return

    # Typed tensor constructors
    @property
    def BFloat16Tensor(self):
        return _TensorType(torch.bfloat16)

    @property
    def ByteTensor(self):
        return _TensorType(torch.uint8)

    @property
    def DoubleTensor(self):
        return _TensorType(torch.float64)

    @property
    def FloatTensor(self):
        return _TensorType(torch.float32)

    @property
    def HalfTensor(self):
        return _TensorType(torch.float16)

    @property
    def IntTensor(self):
        return _TensorType(torch.int32)

    @property
    def LongTensor(self):
        return _TensorType(torch.int64)

    def on_accelerator(self, tensor):
        return tensor.device.type == "biren"

    # Op builders: none (DeepSpeed's fused ops are CUDA or host C++ builds)
    def op_builder_dir(self):
        return "deepspeed.ops.op_builder.cpu"

    def create_op_builder(self, class_name):
        return None

    def get_op_builder(self, class_name):
        return None

    def build_extension(self):
        from torch.utils.cpp_extension import BuildExtension

        return BuildExtension

    def export_envs(self):
        return ["BIREN", "TORCH_BIREN", "BCCL"]

    def visible_devices_envs(self):
        return ["BIREN_VISIBLE_DEVICES"]

    def set_visible_devices_envs(self, current_env, local_accelerator_ids):
        for env in self.visible_devices_envs():
            current_env[env] = ",".join(map(str, local_accelerator_ids))

    def get_compile_backend(self):
        return self._compile_backend

    def set_compile_backend(self, backend):
        supported = torch._dynamo.list_backends(exclude_tags=())
        if backend not in supported:
            raise ValueError(f"{backend} not supported by {self.device_name()}. Supported backends: {supported}")
        self._compile_backend = backend
