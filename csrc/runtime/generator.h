#pragma once
// Random generators of biren devices. Each wraps a CPU Philox/MT generator so the CPU kernels the
// fallback runs draw from the device's own stream (seeded by torch.manual_seed), never the CPU's.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>

#include <mutex>

namespace biren {

struct Generator final : public c10::GeneratorImpl {
  explicit Generator(c10::DeviceIndex device, uint64_t seed = c10::default_rng_seed_val);
  void set_current_seed(uint64_t seed) override;
  void set_offset(uint64_t offset) override;
  uint64_t get_offset() const override;
  uint64_t current_seed() const override;
  uint64_t seed() override;
  void set_state(const c10::TensorImpl& state) override;
  c10::intrusive_ptr<c10::TensorImpl> get_state() const override;
  static c10::DeviceType device_type() { return c10::DeviceType::PrivateUse1; }
  const at::Generator& cpu() const { return cpu_; }

 private:
  Generator* clone_impl() const override;
  at::Generator cpu_;
};

const at::Generator& default_generator(c10::DeviceIndex device);  // -1: current device
at::Generator new_generator(c10::DeviceIndex device);
// The CPU generator a CPU kernel should use for a biren generator (or the device default).
at::Generator cpu_generator_for(const std::optional<at::Generator>& gen, c10::DeviceIndex device);

// While it lives, the CPU default generator continues the device generator's stream, which then
// takes up where the CPU left it. For CPU kernels that draw random numbers without a Generator
// argument (native_dropout), run by the fallback. One at a time in the process; a CPU op drawing
// from the default generator on another thread meanwhile would draw from the device's stream.
class DeviceStreamAsCpuDefault {
 public:
  explicit DeviceStreamAsCpuDefault(c10::DeviceIndex device);
  ~DeviceStreamAsCpuDefault();
  DeviceStreamAsCpuDefault(const DeviceStreamAsCpuDefault&) = delete;
  DeviceStreamAsCpuDefault& operator=(const DeviceStreamAsCpuDefault&) = delete;

 private:
  std::unique_lock<std::recursive_mutex> one_at_a_time_;
  at::Generator device_, cpu_default_, saved_;
};

}  // namespace biren
