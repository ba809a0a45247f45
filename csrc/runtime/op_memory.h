#pragma once
// Host memory that a CPU kernel allocates while it runs a biren op (the fallback) is device memory
// of that op: its output and workspace. While an OpMemoryScope is open on a thread, each host
// allocation of 1 MiB or more is checked against the card first (with what the kernel already
// holds), so an op whose output does not fit raises the device's out-of-memory error before host
// memory is touched. The output is then adopted into the device's accounting as before; the check
// reserves nothing itself.
#include <c10/core/Device.h>

#include <cstddef>
#include <utility>
#include <vector>

namespace biren {

class OpMemoryScope {
 public:
  explicit OpMemoryScope(c10::DeviceIndex device);
  ~OpMemoryScope();
  OpMemoryScope(const OpMemoryScope&) = delete;
  OpMemoryScope& operator=(const OpMemoryScope&) = delete;

  // Used by the host allocator while this scope is the thread's innermost.
  void on_allocate(void* ptr, size_t nbytes);
  bool on_free(void* ptr);
  c10::DeviceIndex device() const { return device_; }
  size_t held() const { return held_; }

 private:
  c10::DeviceIndex device_;
  size_t held_ = 0;  // bytes the kernel holds now, from this thread
  std::vector<std::pair<void*, size_t>> live_;
  OpMemoryScope* outer_;
};

}  // namespace biren
