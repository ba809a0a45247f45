#include "cpu_views.h"

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <cstring>

#include "../runtime/allocator.h"

namespace biren {

c10::Storage cpu_storage_for(const c10::Storage& st) {
  // Resizable with the CPU allocator: an out= kernel that grows it gets fresh CPU memory, which the
  // fallback then adopts back into the biren storage.
  return c10::Storage(c10::Storage::use_byte_size_t(), st.nbytes(),
                      c10::DataPtr(st.mutable_data(), c10::Device(c10::DeviceType::CPU)),
                      c10::GetCPUAllocator(), /*resizable=*/true);
}

static void copy_meta(c10::TensorImpl* dst, const at::Tensor& src) {
  dst->set_sizes_and_strides(src.sizes(), src.strides(), src.storage_offset());
  if (src.is_conj()) dst->_set_conj(true);
  if (src.is_neg()) dst->_set_neg(true);
}

at::Tensor cpu_view(const at::Tensor& t, const c10::Storage& shared) {
  auto out = at::detail::make_tensor<c10::TensorImpl>(c10::Storage(shared), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                                      t.dtype());
  copy_meta(out.unsafeGetTensorImpl(), t);
  return out;
}

at::Tensor cpu_view(const at::Tensor& t) { return cpu_view(t, cpu_storage_for(t.storage())); }

at::Tensor biren_alias(const c10::Storage& storage, const at::Tensor& meta) {
  auto out = at::detail::make_tensor<c10::TensorImpl>(c10::Storage(storage),
                                                      c10::DispatchKeySet(c10::DispatchKey::PrivateUse1), meta.dtype());
  copy_meta(out.unsafeGetTensorImpl(), meta);
  return out;
}

at::Tensor adopt_result(const at::Tensor& cpu, c10::DeviceIndex device) {
  check_fp64(cpu.scalar_type());
  const auto& st = cpu.storage();
  c10::Storage storage(c10::Storage::use_byte_size_t(), st.nbytes(), device_memory().adopt(st, device),
                       &device_memory(), /*resizable=*/true);
  return biren_alias(storage, cpu);
}

namespace {
thread_local int fp64_exempt = 0;
}

void set_fp64_exempt(bool on) { fp64_exempt += on ? 1 : -1; }

void check_fp64(c10::ScalarType dtype) {
  if (dtype != at::kDouble && dtype != at::kComplexDouble) return;
  if (fp64_exempt > 0) return;
  static const bool forbid = [] {
    const char* e = std::getenv("TORCH_BIREN_FP64");
    return e != nullptr && std::strcmp(e, "error") == 0;
  }();
  TORCH_CHECK_TYPE(!forbid, "biren: ", dtype, " is not supported: BR1xx hardware has no FP64 units, and "
                   "TORCH_BIREN_FP64=error forbids emulating it. Use torch.float32 (or unset TORCH_BIREN_FP64).");
  TORCH_WARN_ONCE("biren: BR1xx hardware has no FP64 units; ", dtype, " runs emulated and is charged ",
                  "as such by the device model. Set TORCH_BIREN_FP64=error to make this an error.");
}

}  // namespace biren
