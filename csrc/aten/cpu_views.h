#pragma once
// Zero-copy bridges between biren tensors and CPU tensors over the same host memory.
#include <ATen/core/Tensor.h>

namespace biren {

// A CPU tensor over the biren tensor's memory, with its sizes, strides, offset and conj/neg bits.
// Views of one biren storage must share one CPU storage: pass the same `shared` storage for them.
at::Tensor cpu_view(const at::Tensor& t, const c10::Storage& shared);
c10::Storage cpu_storage_for(const c10::Storage& biren_storage);
at::Tensor cpu_view(const at::Tensor& t);

// A biren tensor over `storage` with the metadata of `meta`.
at::Tensor biren_alias(const c10::Storage& storage, const at::Tensor& meta);
// A biren tensor that takes over the memory of a CPU result (no copy).
at::Tensor adopt_result(const at::Tensor& cpu, c10::DeviceIndex device);

// TORCH_BIREN_FP64 policy; called wherever a float64 tensor comes to exist on the device.
void check_fp64(c10::ScalarType dtype);
// Tensor printing formats through float64 temporaries; they are not the user's float64.
void set_fp64_exempt(bool on);

}  // namespace biren
