#pragma once
// Device enumeration, current device and the lazy-init / fork rules of a biren process.
#include <c10/core/Device.h>

namespace biren {

c10::DeviceIndex device_count();
// Number of devices per visible card is set from Python when the chip is partitioned (SVI).
void set_instances_per_card(int n);
c10::DeviceIndex current_device();
void set_current_device(c10::DeviceIndex index);
// Raises the CUDA-style "invalid device ordinal" error.
void check_device_index(c10::DeviceIndex index);

// Lazy init: marks the runtime as used by this process; a child forked afterwards is poisoned.
void lazy_init();
bool is_initialized();
bool in_bad_fork();

}  // namespace biren
