// The native op set every device needs: allocation, copies, views, resizing, scalars.
#include <ATen/ATen.h>
#include <ATen/EmptyTensor.h>
#include <ATen/native/Resize.h>
#include <ATen/ops/_reshape_alias_native.h>
#include <ATen/ops/as_strided_native.h>
#include <ATen/ops/resize_native.h>
#include <ATen/ops/set_native.h>
#include <ATen/ops/view_native.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "../runtime/allocator.h"
#include "../runtime/device.h"
#include "../runtime/stream.h"
#include "../sim/timeline.h"
#include "cpu_views.h"
#include "fallback.h"

namespace biren {
namespace {

constexpr auto kBiren = c10::DispatchKey::PrivateUse1;

at::Tensor empty_memory_format(c10::IntArrayRef size, std::optional<c10::ScalarType> dtype,
                               std::optional<c10::Layout> layout, std::optional<c10::Device> device,
                               std::optional<bool> pin_memory, std::optional<c10::MemoryFormat> memory_format) {
  TORCH_CHECK(!pin_memory.value_or(false), "Only dense CPU tensors can be pinned");
  TORCH_CHECK_NOT_IMPLEMENTED(layout.value_or(c10::kStrided) == c10::kStrided,
                              "biren supports only strided (dense) tensors, got layout ", *layout);
  auto st = c10::dtype_or_default(dtype);
  check_fp64(st);
  const c10::OptionalDeviceGuard guard(device);
  return at::detail::empty_generic(size, &device_memory(), c10::DispatchKeySet(kBiren), st, memory_format);
}

at::Tensor empty_strided(c10::IntArrayRef size, c10::IntArrayRef stride, std::optional<c10::ScalarType> dtype,
                         std::optional<c10::Layout> layout, std::optional<c10::Device> device,
                         std::optional<bool> pin_memory) {
  TORCH_CHECK_NOT_IMPLEMENTED(layout.value_or(c10::kStrided) == c10::kStrided,
                              "biren supports only strided (dense) tensors, got layout ", *layout);
  auto st = c10::dtype_or_default(dtype);
  check_fp64(st);
  const c10::OptionalDeviceGuard guard(device);
  return at::detail::empty_strided_generic(size, stride, &device_memory(), c10::DispatchKeySet(kBiren), st);
}

double nbytes(const at::Tensor& t) { return static_cast<double>(t.numel()) * t.element_size(); }

// Copies between host and device, and between devices; charged on the link they cross.
void copy_between(const at::Tensor& dst, const at::Tensor& src, bool non_blocking) {
  if (dst.numel() == 0) return;
  const bool d_dev = dst.is_privateuseone(), s_dev = src.is_privateuseone();
  at::Tensor dv, sv;
  if (d_dev && s_dev && dst.storage().is_alias_of(src.storage())) {
    auto shared = cpu_storage_for(dst.storage());
    dv = cpu_view(dst, shared);
    sv = cpu_view(src, shared);
  } else {
    dv = d_dev ? cpu_view(dst) : dst;
    sv = s_dev ? cpu_view(src) : src;
  }
  dv.copy_(sv);
  const auto& p = sim::params();
  double bytes = nbytes(dst);
  if (d_dev && s_dev) {
    auto stream = current_stream(dst.device().index());
    if (dst.device() == src.device()) {
      sim::charge(stream, "Memcpy DtoD", sim::Kind::Copy, sim::generic_cost(0, bytes + nbytes(src), false));
      record_op("Memcpy DtoD", sim::Kind::Copy);
    } else {
      // Over the card links, or the die link between the dies of one card (NUMA, SVI): roofline.h.
      sim::charge(stream, "Memcpy PtoP", sim::Kind::Copy,
                  sim::peer_copy_cost(p, bytes, src.device().index(), dst.device().index()));
      record_op("Memcpy PtoP", sim::Kind::Copy);
    }
  } else if (d_dev) {
    sim::charge(current_stream(dst.device().index()), "Memcpy HtoD", sim::Kind::Copy,
                sim::link_cost(nbytes(src), p.host_link_Bps));
    record_op("Memcpy HtoD", sim::Kind::Copy);
  } else {
    auto stream = current_stream(src.device().index());
    sim::charge(stream, "Memcpy DtoH", sim::Kind::Copy, sim::link_cost(nbytes(src), p.host_link_Bps));
    record_op("Memcpy DtoH", sim::Kind::Copy);
    if (!non_blocking) sim::host_wait(stream, "a blocking copy to the host (.cpu(), .to('cpu'), .numpy(), printing a tensor)");
  }
}

at::Tensor& copy_(at::Tensor& self, const at::Tensor& src, bool non_blocking) {
  if (self.is_same(src)) return self;
  copy_between(self, src, non_blocking);
  return self;
}

at::Tensor _copy_from(const at::Tensor& self, const at::Tensor& dst, bool non_blocking) {
  copy_between(dst, self, non_blocking);
  return dst;
}

at::Tensor _copy_from_and_resize(const at::Tensor& self, const at::Tensor& dst) {
  at::native::resize_(dst, self.sizes(), std::nullopt);
  copy_between(dst, self, false);
  return dst;
}

at::Scalar _local_scalar_dense(const at::Tensor& self) {
  auto stream = current_stream(self.device().index());
  sim::charge(stream, "Memcpy DtoH", sim::Kind::Copy, sim::link_cost(self.element_size(), sim::params().host_link_Bps));
  record_op("Memcpy DtoH", sim::Kind::Copy);
  sim::host_wait(stream, "reading a device value on the host (.item(), .tolist(), bool()/int()/float() of a tensor)");
  return at::_local_scalar_dense(cpu_view(self));
}

const at::Tensor& resize_(const at::Tensor& self, c10::IntArrayRef size, std::optional<c10::MemoryFormat> fmt) {
  const c10::DeviceGuard guard(self.device());
  return at::native::resize_(self, size, fmt);
}

at::Tensor& set_storage(at::Tensor& self, c10::Storage source, int64_t offset, c10::IntArrayRef size,
                        c10::IntArrayRef stride) {
  const c10::DeviceGuard guard(self.device());
  return at::native::set_storage_cpu_(self, std::move(source), offset, size, stride);
}

at::Tensor& set_source_storage(at::Tensor& self, c10::Storage source) {
  int64_t n = static_cast<int64_t>(source.nbytes() / self.dtype().itemsize());
  return set_storage(self, std::move(source), 0, {n}, {});
}

at::Tensor& set_source_tensor(at::Tensor& self, const at::Tensor& src) {
  if (self.is_same(src)) return self;
  return set_storage(self, src.storage(), src.storage_offset(), src.sizes(), src.strides());
}

at::Tensor& set_empty(at::Tensor& self) {
  const c10::DeviceGuard guard(self.device());
  c10::Storage st(c10::Storage::use_byte_size_t(), 0, device_memory().allocate(0), &device_memory(), true);
  self.unsafeGetTensorImpl()->set_storage_keep_dtype(std::move(st));
  self.unsafeGetTensorImpl()->set_sizes_contiguous({0});
  return self;
}

// `param.data = param.to("biren")` (Module._apply keeping Parameter objects, FSDP2, DeepSpeed)
// needs ATen to call dense CPU and biren tensors shallow-copy compatible, as it calls CPU and CUDA
// ones; its own answer knows only the built-in backends.
bool has_compatible_shallow_copy_type(const at::Tensor& self, const at::Tensor& from) {
  auto dense = [](const at::Tensor& t) {
    return t.layout() == c10::kStrided && (t.device().is_cpu() || t.device().is_privateuseone());
  };
  return dense(self) && dense(from);
}

}  // namespace

// The registrations below that charge the device nothing (they allocate, alias or answer a
// question): what the projection's trace treats as free (torch_biren/projection/trace.py).
const std::vector<std::string>& uncharged_ops() {
  static const std::vector<std::string> names = {
      "aten::empty.memory_format", "aten::empty_strided", "aten::as_strided", "aten::view", "aten::_reshape_alias",
      "aten::resize_", "aten::set_.source_Storage", "aten::set_.source_Storage_storage_offset",
      "aten::set_.source_Tensor", "aten::set_", "aten::_has_compatible_shallow_copy_type"};
  return names;
}

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("empty.memory_format", empty_memory_format);
  m.impl("empty_strided", empty_strided);
  m.impl("as_strided", at::native::as_strided_tensorimpl);
  m.impl("view", at::native::view);
  m.impl("_reshape_alias", at::native::_reshape_alias);
  m.impl("resize_", resize_);
  m.impl("copy_", copy_);
  m.impl("_copy_from", _copy_from);
  m.impl("_copy_from_and_resize", _copy_from_and_resize);
  m.impl("_local_scalar_dense", _local_scalar_dense);
  m.impl("set_.source_Storage", set_source_storage);
  m.impl("set_.source_Storage_storage_offset", set_storage);
  m.impl("set_.source_Tensor", set_source_tensor);
  m.impl("set_", set_empty);
  m.impl("_has_compatible_shallow_copy_type", has_compatible_shallow_copy_type);
}

}  // namespace biren
