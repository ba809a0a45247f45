#pragma once
// Streams are ordering domains of the simulated timeline: ops run synchronously on the host,
// and each stream id has its own simulated clock.
#include <c10/core/Stream.h>

namespace biren {

// Device -1 means the current device; any other invalid index raises "invalid device ordinal".
c10::Stream default_stream(c10::DeviceIndex device);
c10::Stream current_stream(c10::DeviceIndex device);
c10::Stream exchange_stream(c10::Stream stream);  // sets current, returns previous
c10::Stream new_stream(c10::DeviceIndex device);

}  // namespace biren
