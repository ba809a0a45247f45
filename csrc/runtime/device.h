#pragma once
// Device enumeration, current device and the lazy-init / fork rules of a biren process.
#include <c10/core/Device.h>

#include <string>

namespace biren {

c10::DeviceIndex device_count();  // 0 once set_unavailable was called
// A plugin that failed to load part-way makes the device fully unavailable, saying why.
void set_unavailable(const std::string& reason);
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
