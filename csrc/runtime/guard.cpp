#include "guard.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <string>

#include "../sim/timeline.h"
#include "device.h"
#include "stream.h"

namespace biren {
namespace {

// An event remembers the simulated time of the stream it was recorded on.
struct Event {
  c10::DeviceIndex device;
  bool timing;
  sim::Tick time;
};

}  // namespace

c10::Device GuardImpl::exchangeDevice(c10::Device d) const {
  auto old = getDevice();
  if (d.index() != old.index()) setDevice(d);
  return old;
}

c10::Device GuardImpl::getDevice() const { return c10::Device(D, current_device()); }

void GuardImpl::setDevice(c10::Device d) const {
  TORCH_CHECK(d.type() == D, "expected a biren device, got ", d);
  set_current_device(d.index());
}

void GuardImpl::uncheckedSetDevice(c10::Device d) const noexcept {
  if (d.index() >= 0 && d.index() < device_count()) set_current_device(d.index());
}

c10::Stream GuardImpl::getStream(c10::Device d) const { return current_stream(d.index()); }
c10::Stream GuardImpl::getDefaultStream(c10::Device d) const { return default_stream(d.index()); }
c10::Stream GuardImpl::getStreamFromGlobalPool(c10::Device d, bool) const { return new_stream(d.index()); }
c10::Stream GuardImpl::getNewStream(c10::Device d, int) const { return new_stream(d.index()); }
c10::Stream GuardImpl::exchangeStream(c10::Stream s) const { return exchange_stream(s); }
c10::DeviceIndex GuardImpl::deviceCount() const noexcept { return device_count(); }

c10::DeviceCapability GuardImpl::getDeviceCapability(c10::Device d) const {
  check_device_index(d.index() < 0 ? current_device() : d.index());
  c10::DeviceCapability cap;  // every dtype runs; FP64 is emulated unless TORCH_BIREN_FP64=error forbids it
  const char* fp64 = std::getenv("TORCH_BIREN_FP64");
  if (fp64 != nullptr && std::string(fp64) == "error") {
    cap.capability_data.supported_scalar_types.has_Double = 0;
    cap.capability_data.supported_scalar_types.has_ComplexDouble = 0;
  }
  return cap;
}

void GuardImpl::record(void** event, const c10::Stream& stream, const c10::DeviceIndex device_index,
                       const c10::EventFlag flag) const {
  TORCH_CHECK(device_index == -1 || device_index == stream.device_index(), "Event device index ",
              static_cast<int>(device_index), " does not match recording stream's device index ",
              static_cast<int>(stream.device_index()), ".");
  if (*event == nullptr)
    *event = new Event{stream.device_index(), flag == c10::EventFlag::BACKEND_DEFAULT, 0};
  auto* e = static_cast<Event*>(*event);
  TORCH_CHECK(e->device == stream.device_index(), "Event recorded on biren:", static_cast<int>(e->device),
              " cannot be recorded on a stream of biren:", static_cast<int>(stream.device_index()));
  e->time = sim::stream_clock(stream);
}

void GuardImpl::block(void* event, const c10::Stream& stream) const {
  if (event == nullptr) return;
  sim::stream_wait_until(stream, static_cast<Event*>(event)->time);
}

bool GuardImpl::queryEvent(void*) const { return true; }

void GuardImpl::destroyEvent(void* event, const c10::DeviceIndex) const noexcept {
  delete static_cast<Event*>(event);
}

void GuardImpl::synchronizeEvent(void* event) const {
  if (event == nullptr) return;
  auto* e = static_cast<Event*>(event);
  sim::host_wait_until(e->device, e->time, "Event.synchronize()");
}

double GuardImpl::elapsedTime(void* event1, void* event2, const c10::DeviceIndex) const {
  TORCH_CHECK(event1 && event2, "Both events must be recorded before calculating elapsed time.");
  auto* a = static_cast<Event*>(event1);
  auto* b = static_cast<Event*>(event2);
  TORCH_CHECK(a->timing && b->timing,
              "Both events must be created with argument 'enable_timing=True'.");
  return static_cast<double>(b->time - a->time) / (sim::kTicksPerNs * 1e6);  // exact difference, one rounding
}

bool GuardImpl::queryStream(const c10::Stream&) const { return true; }
void GuardImpl::synchronizeStream(const c10::Stream& stream) const { sim::host_wait(stream, "Stream.synchronize()"); }
void GuardImpl::synchronizeDevice(const c10::DeviceIndex device_index) const {
  auto d = device_index < 0 ? current_device() : device_index;
  check_device_index(d);
  sim::host_wait_device(d, "synchronize()");
}

C10_REGISTER_GUARD_IMPL(PrivateUse1, GuardImpl);

}  // namespace biren
