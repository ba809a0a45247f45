// Device events for PyTorch's legacy profiler (torch.autograd.profiler.profile(use_device="biren")):
// it records one event on entering and one on leaving each op, and reports the simulated time
// between them as the op's device time. Without these stubs its callbacks fail and the events keep
// no start time. (A torch/csrc header, but a light one: the stub interface and c10 only.)
#include <c10/util/ApproximateClock.h>
#include <torch/csrc/profiler/stubs/base.h>

#include <memory>

#include "../sim/timeline.h"
#include "device.h"
#include "stream.h"

namespace biren {
namespace {

using torch::profiler::impl::ProfilerVoidEventStub;

struct Mark {
  sim::Tick time;  // the clock of the stream it was recorded on (integer picoseconds)
};

struct Stubs final : public torch::profiler::impl::ProfilerStubs {
  void record(c10::DeviceIndex* device, ProfilerVoidEventStub* event, int64_t* cpu_ns) const override {
    auto stream = current_stream(-1);
    if (device) *device = stream.device_index();
    *event = std::make_shared<Mark>(Mark{sim::stream_clock(stream)});
    if (cpu_ns) *cpu_ns = c10::getTime();
  }
  float elapsed(const ProfilerVoidEventStub* a, const ProfilerVoidEventStub* b) const override {
    auto dt = static_cast<const Mark*>(b->get())->time - static_cast<const Mark*>(a->get())->time;
    return static_cast<float>(sim::to_ns(dt) / 1e3);  // microseconds
  }
  void mark(const char*) const override {}
  void rangePush(const char*) const override {}
  void rangePop() const override {}
  bool enabled() const override { return true; }
  void onEachDevice(std::function<void(int)> op) const override {
    auto prev = current_device();
    for (c10::DeviceIndex d = 0; d < device_count(); ++d) {
      set_current_device(d);
      op(d);
    }
    if (device_count() > 0) set_current_device(prev);
  }
  void synchronize() const override { sim::host_wait_device(current_device()); }
};

[[maybe_unused]] const bool registered = [] {
  static Stubs stubs;
  torch::profiler::impl::registerPrivateUse1Methods(&stubs);
  return true;
}();

}  // namespace
}  // namespace biren
