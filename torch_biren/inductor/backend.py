"""biren's registration with Inductor, through the extension points PyTorch gives out-of-tree
devices: Triton scheduling (Inductor's own fusion and Triton code generation), a Python wrapper
whose kernel definitions load through launcher.py, and the device ops the wrapper emits."""

import functools
import hashlib

# Inductor's options for a biren graph, over the user's mode and options. Triton GEMM templates
# would autotune by running every candidate interpreted (minutes per shape), so GEMMs stay extern
# calls to the device's own kernels; "reduce-overhead" replays biren graphs (biren/graphs.py) in
# place of CUDA graph trees; kernels load in this process (no compile workers: nothing to compile).
CONFIG = {
    "max_autotune": False,
    "max_autotune_gemm": False,
    "max_autotune_pointwise": False,
    "coordinate_descent_tuning": False,
    "triton.cudagraphs": False,
    "triton.cudagraph_trees": False,
    "compile_threads": 1,
    "triton.codegen_upcast_to_fp32": True,  # the interpreter's bfloat16 arithmetic is wrong
}


def _device_op_overrides():
    from torch._inductor.codegen.common import DeviceOpOverrides

    class BirenDeviceOpOverrides(DeviceOpOverrides):
        def import_get_raw_stream_as(self, name):
            return f"from torch_biren.inductor.launcher import raw_stream as {name}"

        def set_device(self, device_idx):
            return f"torch.biren.set_device({device_idx})"

        def synchronize(self):
            return "torch.biren.synchronize()"

        def device_guard(self, device_idx):
            return f"torch.biren.device({device_idx})"

    return BirenDeviceOpOverrides()


def _wrapper_codegen():
    from torch._inductor.codegen.wrapper import PythonWrapperCodegen

    class BirenWrapperCodegen(PythonWrapperCodegen):
        """Python wrapper code whose biren kernels load through launcher.triton, which launches
        them on the device's memory, in place of AsyncCompile's (which compiles for a GPU)."""

        @staticmethod
        def create(is_subgraph, subgraph_name, parent_wrapper, partition_signatures=None):
            if is_subgraph:
                return PythonWrapperCodegen.create(is_subgraph, subgraph_name, parent_wrapper,
                                                   partition_signatures)
            return BirenWrapperCodegen()

        def write_header(self):
            super().write_header()
            self.imports.writeline("from torch_biren.inductor import launcher as biren_launcher")

        def define_kernel(self, kernel_name, kernel_body, metadata=None, gpu=True, cpp_definition=None):
            if kernel_body.startswith("async_compile.triton(") and "device_str='biren'" in kernel_body:
                kernel_body = "biren_launcher.triton(" + kernel_body.removeprefix("async_compile.triton(")
            super().define_kernel(kernel_name, kernel_body, metadata, gpu, cpp_definition)

    return BirenWrapperCodegen


def _backend_hash(original):
    """Inductor keys its caches on the Triton backend's hash; with no GPU driver Triton has no
    active backend (or, under the CUDA migration, one that cannot load libcuda), and biren's
    kernels are interpreted: key them on Triton's own source."""

    @functools.wraps(original)
    def hash_with_backend():
        try:
            return original()
        except Exception:  # noqa: BLE001 - Triton's drivers fail with RuntimeError or AssertionError
            from torch._inductor.runtime.triton_compat import triton_key

            return hashlib.sha256(f"{triton_key()}-biren-interpreter".encode()).hexdigest().upper()

    hash_with_backend._biren = True
    return hash_with_backend


@functools.cache
def install():
    """Registers biren with Inductor once (importing Inductor takes seconds: torch.compile does it)."""
    import torch.utils._triton as triton_utils
    from torch._inductor.codegen.common import register_backend_for_device, register_device_op_overrides
    from torch._inductor.codegen.triton import TritonScheduling

    from ..biren import dynamo

    from ..sim import chip
    from . import cost

    dynamo.install()
    chip.on_chip_change(lambda _chip: cost.clear_memo())
    register_backend_for_device("biren", TritonScheduling, _wrapper_codegen())
    register_device_op_overrides("biren", _device_op_overrides())
    if not getattr(triton_utils.triton_hash_with_backend, "_biren", False):
        triton_utils.triton_hash_with_backend = _backend_hash(triton_utils.triton_hash_with_backend)
