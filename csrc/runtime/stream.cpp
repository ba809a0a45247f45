#include "stream.h"

#include <atomic>
#include <vector>

#include "device.h"

namespace biren {
namespace {

std::atomic<c10::StreamId> next_id{1};  // 0 is the default stream of every device
thread_local std::vector<c10::StreamId> tls_current;

c10::StreamId& slot(c10::DeviceIndex device) {
  if (tls_current.size() <= static_cast<size_t>(device)) tls_current.resize(device + 1, 0);
  return tls_current[device];
}

// -1 (a device given without an index, as torch.Stream(device="biren") does) is the current device.
c10::DeviceIndex resolve(c10::DeviceIndex device) {
  if (device < 0) device = current_device();
  check_device_index(device);
  return device;
}

c10::Stream make(c10::DeviceIndex device, c10::StreamId id) {
  return c10::Stream(c10::Stream::UNSAFE, c10::Device(c10::DeviceType::PrivateUse1, device), id);
}

}  // namespace

c10::Stream default_stream(c10::DeviceIndex device) { return make(resolve(device), 0); }

c10::Stream current_stream(c10::DeviceIndex device) {
  device = resolve(device);
  return make(device, slot(device));
}

c10::Stream exchange_stream(c10::Stream stream) {
  auto old = current_stream(stream.device_index());
  slot(old.device_index()) = stream.id();
  return old;
}

c10::Stream new_stream(c10::DeviceIndex device) { return make(resolve(device), next_id++); }

}  // namespace biren
