#pragma once
// Device memory of a simulated card: a caching allocator over host memory, with the card's
// capacity, per-device statistics and CUDA-style out-of-memory errors. Every per-device entry point
// rejects an invalid index with the "invalid device ordinal" error.
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/Storage.h>

namespace biren {

class DeviceMemory final : public c10::DeviceAllocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override;  // on the current device
  c10::DataPtr allocate_on(c10::DeviceIndex device, size_t nbytes);
  c10::DeleterFnPtr raw_deleter() const override;
  void copy_data(void* dest, const void* src, std::size_t count) const override;
  bool initialized() override { return true; }
  void emptyCache(c10::MempoolId_t mempool_id = {0, 0}) override;
  void recordStream(const c10::DataPtr&, c10::Stream) override {}
  c10::CachingDeviceAllocator::DeviceStats getDeviceStats(c10::DeviceIndex device) override;
  void resetAccumulatedStats(c10::DeviceIndex device) override;
  void resetPeakStats(c10::DeviceIndex device) override;
  std::pair<size_t, size_t> getMemoryInfo(c10::DeviceIndex device) override;

  // Takes over memory a CPU kernel allocated for an op's output, so the result needs no copy.
  c10::DataPtr adopt(const c10::Storage& cpu_storage, c10::DeviceIndex device);
  // Raises the device's out-of-memory error (counted in num_ooms) unless `bytes` more would fit the
  // card, after flushing the cache as an allocation would, and the host; reserves nothing.
  void check_room(c10::DeviceIndex device, size_t bytes, size_t requested);

  void set_capacity(size_t bytes);  // per device, from the chip
  size_t capacity(c10::DeviceIndex device);
  void set_memory_fraction(double fraction, c10::DeviceIndex device);
  void empty_cache(c10::DeviceIndex device);  // -1: all
};

DeviceMemory& device_memory();

}  // namespace biren
