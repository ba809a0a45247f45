#include "generator.h"

#include <ATen/core/Tensor.h>

#include <mutex>
#include <vector>

#include "device.h"

namespace biren {

Generator::Generator(c10::DeviceIndex device, uint64_t seed)
    : c10::GeneratorImpl(c10::Device(c10::DeviceType::PrivateUse1, device),
                         c10::DispatchKeySet(c10::DispatchKey::PrivateUse1)),
      cpu_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

void Generator::set_current_seed(uint64_t seed) { cpu_.set_current_seed(seed); }
void Generator::set_offset(uint64_t offset) { cpu_.set_offset(offset); }
uint64_t Generator::get_offset() const { return cpu_.get_offset(); }
uint64_t Generator::current_seed() const { return cpu_.current_seed(); }
uint64_t Generator::seed() { return cpu_.seed(); }
void Generator::set_state(const c10::TensorImpl& state) { cpu_.unsafeGetGeneratorImpl()->set_state(state); }
c10::intrusive_ptr<c10::TensorImpl> Generator::get_state() const {
  return cpu_.unsafeGetGeneratorImpl()->get_state();
}

Generator* Generator::clone_impl() const {
  auto* g = new Generator(device().index());
  g->cpu_ = cpu_.clone();
  return g;
}

const at::Generator& default_generator(c10::DeviceIndex device) {
  static std::once_flag once;
  static std::vector<at::Generator> gens;
  std::call_once(once, [] {
    for (c10::DeviceIndex i = 0; i < device_count(); ++i) gens.push_back(at::make_generator<Generator>(i));
  });
  if (device < 0) device = current_device();
  check_device_index(device);
  return gens.at(device);
}

at::Generator new_generator(c10::DeviceIndex device) {
  if (device < 0) device = current_device();
  check_device_index(device);
  return at::make_generator<Generator>(device);
}

at::Generator cpu_generator_for(const std::optional<at::Generator>& gen, c10::DeviceIndex device) {
  if (gen.has_value() && gen->defined()) {
    TORCH_CHECK(gen->device().type() == c10::DeviceType::PrivateUse1, "Expected a 'biren' device type for generator but found '",
                gen->device().type(), "'");
    return gen->get<Generator>()->cpu();
  }
  return default_generator(device).get<Generator>()->cpu();
}

namespace {
std::recursive_mutex swap_mu;
}

DeviceStreamAsCpuDefault::DeviceStreamAsCpuDefault(c10::DeviceIndex device)
    : one_at_a_time_(swap_mu),
      device_(cpu_generator_for(std::nullopt, device)),
      cpu_default_(at::detail::getDefaultCPUGenerator()) {
  std::scoped_lock g(cpu_default_.mutex(), device_.mutex());
  saved_ = cpu_default_.clone();
  cpu_default_.set_state(device_.get_state());
}

DeviceStreamAsCpuDefault::~DeviceStreamAsCpuDefault() {
  std::scoped_lock g(cpu_default_.mutex(), device_.mutex());
  device_.set_state(cpu_default_.get_state());
  cpu_default_.set_state(saved_.get_state());
}

}  // namespace biren
