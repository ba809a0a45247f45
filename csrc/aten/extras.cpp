// Ops a naive fallback gets wrong or cannot reach: convolution's overrideable entry points, the
// attention backend choice (a DispatchStub, not an op), and integer histc (HF MoE routers count
// tokens per expert with it; CPU histc takes floats only).
#include <ATen/ATen.h>
#include <ATen/native/transformers/attention.h>
#include <torch/library.h>

#include "../runtime/stream.h"
#include "../sim/timeline.h"
#include "cpu_views.h"
#include "fallback.h"

namespace biren {
namespace {

void convolution_overrideable(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  static const auto conv = c10::Dispatcher::singleton().findSchemaOrThrow("aten::convolution", "");
  run_on_cpu(op, stack, conv);
}

at::Tensor maybe_view(const at::Tensor& t) { return t.defined() && t.is_privateuseone() ? cpu_view(t) : t; }

std::tuple<at::Tensor, at::Tensor, at::Tensor> convolution_backward_overrideable(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight, c10::IntArrayRef stride,
    c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed, c10::IntArrayRef output_padding,
    int64_t groups, std::array<bool, 3> output_mask) {
  std::vector<int64_t> bias_len{transposed ? weight.size(1) * groups : weight.size(0)};
  at::OptionalIntArrayRef bias_sizes = output_mask[2] ? at::OptionalIntArrayRef(bias_len) : std::nullopt;
  auto [gi, gw, gb] = at::convolution_backward(maybe_view(grad_output), maybe_view(input), maybe_view(weight),
                                               bias_sizes, stride, padding, dilation, transposed, output_padding,
                                               groups, output_mask);
  auto d = input.device().index();
  auto back = [&](const at::Tensor& t) -> at::Tensor { return t.defined() ? adopt_result(t, d) : t; };
  // The formula is torch_biren/sim/registry.py's, so a projection prices it the same.
  std::vector<c10::IValue> args{grad_output, input, weight, stride, padding, dilation, transposed, output_padding,
                                groups, c10::List<bool>({output_mask[0], output_mask[1], output_mask[2]})};
  sim::charge(current_stream(d), "aten::convolution_backward_overrideable", sim::Kind::Native,
              formula_cost("aten::convolution_backward_overrideable", args));
  record_op("aten::convolution_backward_overrideable", sim::Kind::Native);
  return {back(gi), back(gw), back(gb)};
}

at::Tensor histc(const at::Tensor& self, int64_t bins, const at::Scalar& min, const at::Scalar& max) {
  auto v = cpu_view(self);
  auto r = at::isIntegralType(self.scalar_type(), true) ? at::histc(v.to(at::kFloat), bins, min, max).to(self.scalar_type())
                                                        : at::histc(v, bins, min, max);
  double bytes = static_cast<double>(self.nbytes() + r.nbytes());
  sim::charge(current_stream(self.device().index()), "aten::histc", sim::Kind::Native,
              sim::generic_cost(static_cast<double>(self.numel()), bytes, false));
  record_op("aten::histc", sim::Kind::Native);
  return adopt_result(r, self.device().index());
}

}  // namespace

// SDPA on biren takes the fused "overrideable" attention ops (the Triton flash kernels, registered
// from Python) unless dropout asks for PyTorch's math path.
int64_t fused_sdp_choice(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const std::optional<at::Tensor>&, double dropout_p, bool, std::optional<double>, bool) {
  constexpr int64_t kMath = 0, kOverrideable = 4;  // sdp::SDPBackend
  bool ok = dropout_p == 0.0 && q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && k.size(1) > 0 &&
            q.size(1) % k.size(1) == 0;
  return ok ? kOverrideable : kMath;
}

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("convolution_overrideable", torch::CppFunction::makeFromBoxedFunction<&convolution_overrideable>());
  m.impl("convolution_backward_overrideable", convolution_backward_overrideable);
  m.impl("histc", histc);
}

}  // namespace biren

namespace at::native {
REGISTER_PRIVATEUSE1_DISPATCH(_fused_sdp_choice_stub, &biren::fused_sdp_choice);
}
