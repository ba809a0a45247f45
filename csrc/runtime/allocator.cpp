#include "allocator.h"

#include <c10/util/Exception.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <memory>
#include <vector>

#include "device.h"
#include "memory_history.h"

namespace biren {
namespace {

using c10::CachingAllocator::Stat;
using c10::CachingAllocator::StatArray;
using c10::CachingDeviceAllocator::DeviceStats;

constexpr size_t kSmall = 1 << 20;        // requests below 1 MiB share 512 B granules
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = 128 << 10;  // larger ones round to 128 KiB
constexpr size_t kAlign = 64;

struct Block {  // the DataPtr's context
  void* ptr;
  c10::DeviceIndex device;
  size_t size;       // bytes reserved
  size_t requested;  // bytes asked for
  c10::Storage adopted;  // set when the memory came from a CPU kernel's output
};

struct PerDevice {
  std::multimap<size_t, void*> cached;  // free blocks by size
  DeviceStats stats;
  double fraction = 1.0;
};

std::mutex mu;
std::vector<PerDevice> devices;
size_t card_capacity = size_t(65024) << 20;  // BR166 [R], replaced by the chip file at import

PerDevice& dev(c10::DeviceIndex d) {
  if (devices.size() <= static_cast<size_t>(d)) devices.resize(d + 1);
  return devices[d];
}

size_t round_size(size_t n) {
  if (n < kSmall) return std::max(kSmallRound, (n + kSmallRound - 1) / kSmallRound * kSmallRound);
  return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
}

int pool_of(size_t n) {
  return static_cast<int>(n < kSmall ? c10::CachingAllocator::StatType::SMALL_POOL
                                     : c10::CachingAllocator::StatType::LARGE_POOL);
}

void bump(StatArray& a, int pool, size_t n, bool up) {
  for (int i : {0, pool}) up ? a[i].increase(n) : a[i].decrease(n);
}

size_t limit(c10::DeviceIndex d) { return static_cast<size_t>(card_capacity * dev(d).fraction); }

std::string fmt(size_t bytes) {
  char buf[64];
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, units[u]);
  return buf;
}

size_t host_available() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return SIZE_MAX;
  char line[256];
  size_t kb = SIZE_MAX;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %zu kB", &kb) == 1) break;
  std::fclose(f);
  return kb == SIZE_MAX ? kb : kb * 1024;
}

void release_cached(c10::DeviceIndex d) {
  auto& pd = dev(d);
  for (auto& [size, ptr] : pd.cached) {
    memory_history::record(memory_history::Action::SegmentFree, d, ptr, size, nullptr);
    std::free(ptr);
    bump(pd.stats.reserved_bytes, pool_of(size), size, false);
    bump(pd.stats.segment, pool_of(size), 1, false);
  }
  pd.cached.clear();
}

[[noreturn]] void out_of_memory(c10::DeviceIndex d, size_t requested) {
  auto& s = dev(d).stats;
  size_t reserved = s.reserved_bytes[0].current, allocated = s.allocated_bytes[0].current;
  size_t cap = limit(d);
  s.num_ooms++;
  std::ostringstream m;
  m << "biren out of memory. Tried to allocate " << fmt(requested) << ". Device biren:" << int(d)
    << " has a total capacity of " << fmt(cap) << " of which " << fmt(cap > reserved ? cap - reserved : 0)
    << " is free. Of the allocated memory " << fmt(allocated) << " is allocated by PyTorch, and "
    << fmt(reserved - allocated) << " is reserved by PyTorch but unallocated.";
  if (dev(d).fraction < 1.0)
    m << " The process is limited to " << dev(d).fraction << " of the card by set_per_process_memory_fraction.";
  memory_history::notify_oom(d, requested, cap, cap > reserved ? cap - reserved : 0);
  TORCH_CHECK_WITH(OutOfMemoryError, false, m.str());
}

// Makes room for `size` more reserved bytes on device d, flushing the cache once if needed.
void reserve(c10::DeviceIndex d, size_t size, size_t requested) {
  auto& s = dev(d).stats;
  if (s.reserved_bytes[0].current + size <= limit(d)) return;
  s.num_alloc_retries++;
  release_cached(d);
  if (s.reserved_bytes[0].current + size > limit(d)) out_of_memory(d, requested);
}

// Device memory is host memory: a request that fits the card but not the host is an out-of-memory
// error of the device too (checked only for large requests, where it can happen).
void check_host(c10::DeviceIndex d, size_t size, size_t requested) {
  if (size < (size_t(64) << 20)) return;
  size_t avail = host_available();
  if (size <= avail) return;
  auto& pd = dev(d);
  pd.stats.num_ooms++;
  size_t cap = limit(d), reserved = pd.stats.reserved_bytes[0].current;
  TORCH_CHECK_WITH(OutOfMemoryError, false, "biren out of memory. Tried to allocate ", fmt(requested), " on biren:",
                   int(d), ". The request fits the simulated card (", fmt(cap > reserved ? cap - reserved : 0),
                   " free of ", fmt(cap), "), but biren device memory is host memory and this host has only ",
                   fmt(avail), " available.");
}

void free_block(void* ctx) {
  std::unique_ptr<Block> owned(static_cast<Block*>(ctx));
  Block& b = *owned;
  auto context = memory_history::gather();
  std::lock_guard<std::mutex> g(mu);
  memory_history::record(memory_history::Action::FreeRequested, b.device, b.ptr, b.size, context);
  memory_history::record(memory_history::Action::FreeCompleted, b.device, b.ptr, b.size, context);
  auto& pd = dev(b.device);
  int pool = pool_of(b.size);
  bump(pd.stats.allocated_bytes, pool, b.size, false);
  bump(pd.stats.active_bytes, pool, b.size, false);
  bump(pd.stats.requested_bytes, pool, b.requested, false);
  bump(pd.stats.allocation, pool, 1, false);
  bump(pd.stats.active, pool, 1, false);
  if (b.adopted) {  // goes back to the CPU allocator with its storage
    bump(pd.stats.reserved_bytes, pool, b.size, false);
    bump(pd.stats.segment, pool, 1, false);
    memory_history::record(memory_history::Action::SegmentFree, b.device, b.ptr, b.size, context);
    return;
  }
  pd.cached.emplace(b.size, b.ptr);
}

void delete_device_ptr(void* ctx) {
  if (ctx != nullptr) free_block(ctx);
}

Block* account_live(c10::DeviceIndex d, void* ptr, size_t size, size_t requested, c10::Storage adopted) {
  auto& pd = dev(d);
  int pool = pool_of(size);
  bump(pd.stats.allocated_bytes, pool, size, true);
  bump(pd.stats.active_bytes, pool, size, true);
  bump(pd.stats.requested_bytes, pool, requested, true);
  bump(pd.stats.allocation, pool, 1, true);
  bump(pd.stats.active, pool, 1, true);
  return new Block{ptr, d, size, requested, std::move(adopted)};
}

}  // namespace

c10::DataPtr DeviceMemory::allocate(size_t nbytes) { return allocate_on(current_device(), nbytes); }

c10::DataPtr DeviceMemory::allocate_on(c10::DeviceIndex d, size_t nbytes) {
  c10::Device device(c10::DeviceType::PrivateUse1, d);
  check_device_index(d);
  if (nbytes == 0) return c10::DataPtr(nullptr, nullptr, &delete_device_ptr, device);
  lazy_init();
  size_t size = round_size(nbytes);
  auto context = memory_history::gather();
  std::lock_guard<std::mutex> g(mu);
  auto& pd = dev(d);
  void* ptr = nullptr;
  // Reuse a cached block no more than 1/8 larger than the request.
  auto it = pd.cached.lower_bound(size);
  if (it != pd.cached.end() && it->first <= size + size / 8) {
    size = it->first;
    ptr = it->second;
    pd.cached.erase(it);
  } else {
    reserve(d, size, nbytes);
    check_host(d, size, nbytes);
    ptr = std::aligned_alloc(kAlign, size);
    if (ptr == nullptr) {
      pd.stats.num_ooms++;
      TORCH_CHECK_WITH(OutOfMemoryError, false, "biren out of memory: the host could not provide ", fmt(size),
                       " for device memory of biren:", int(d), " (device memory is host memory).");
    }
    int pool = pool_of(size);
    bump(pd.stats.reserved_bytes, pool, size, true);
    bump(pd.stats.segment, pool, 1, true);
    memory_history::record(memory_history::Action::SegmentAlloc, d, ptr, size, context);
  }
  memory_history::record(memory_history::Action::Alloc, d, ptr, nbytes, context);
  return c10::DataPtr(ptr, account_live(d, ptr, size, nbytes, {}), &delete_device_ptr, device);
}

c10::DataPtr DeviceMemory::adopt(const c10::Storage& cpu_storage, c10::DeviceIndex d) {
  c10::Device device(c10::DeviceType::PrivateUse1, d);
  void* ptr = cpu_storage.mutable_data();
  size_t size = cpu_storage.nbytes();
  if (ptr == nullptr) return c10::DataPtr(nullptr, nullptr, &delete_device_ptr, device);
  check_device_index(d);
  auto context = memory_history::gather();
  std::lock_guard<std::mutex> g(mu);
  reserve(d, size, size);
  int pool = pool_of(size);
  auto& pd = dev(d);
  bump(pd.stats.reserved_bytes, pool, size, true);
  bump(pd.stats.segment, pool, 1, true);
  memory_history::record(memory_history::Action::SegmentAlloc, d, ptr, size, context);
  memory_history::record(memory_history::Action::Alloc, d, ptr, size, context);
  return c10::DataPtr(ptr, account_live(d, ptr, size, size, cpu_storage), &delete_device_ptr, device);
}

void DeviceMemory::check_room(c10::DeviceIndex d, size_t bytes, size_t requested) {
  check_device_index(d);
  std::lock_guard<std::mutex> g(mu);
  size_t size = round_size(bytes);
  reserve(d, size, requested);
  check_host(d, size, requested);
}

// Contexts are blocks, not the data pointer, so raw_allocate (which hands out the pointer alone) is unsupported.
c10::DeleterFnPtr DeviceMemory::raw_deleter() const { return nullptr; }

void DeviceMemory::copy_data(void* dest, const void* src, std::size_t count) const {
  std::memcpy(dest, src, count);
}

void DeviceMemory::emptyCache(c10::MempoolId_t) { empty_cache(-1); }

void DeviceMemory::empty_cache(c10::DeviceIndex d) {
  if (d >= 0) check_device_index(d);
  std::lock_guard<std::mutex> g(mu);
  if (d >= 0) return release_cached(d);
  for (size_t i = 0; i < devices.size(); ++i) release_cached(static_cast<c10::DeviceIndex>(i));
}

DeviceStats DeviceMemory::getDeviceStats(c10::DeviceIndex d) {
  check_device_index(d);
  std::lock_guard<std::mutex> g(mu);
  return dev(d).stats;
}

template <typename F>
void for_each_stat(DeviceStats& s, F f) {
  for (auto* a : {&s.allocation, &s.segment, &s.active, &s.inactive_split, &s.allocated_bytes, &s.reserved_bytes,
                  &s.active_bytes, &s.inactive_split_bytes, &s.requested_bytes})
    for (auto& st : *a) f(st);
}

void DeviceMemory::resetAccumulatedStats(c10::DeviceIndex d) {
  check_device_index(d);
  std::lock_guard<std::mutex> g(mu);
  auto& s = dev(d).stats;
  for_each_stat(s, [](Stat& st) { st.reset_accumulated(); });
  s.num_alloc_retries = 0;
  s.num_ooms = 0;
}

void DeviceMemory::resetPeakStats(c10::DeviceIndex d) {
  check_device_index(d);
  std::lock_guard<std::mutex> g(mu);
  for_each_stat(dev(d).stats, [](Stat& st) { st.reset_peak(); });
}

std::pair<size_t, size_t> DeviceMemory::getMemoryInfo(c10::DeviceIndex d) {
  check_device_index(d);
  std::lock_guard<std::mutex> g(mu);
  size_t reserved = dev(d).stats.reserved_bytes[0].current;
  return {card_capacity > reserved ? card_capacity - reserved : 0, card_capacity};
}

void DeviceMemory::set_capacity(size_t bytes) {
  std::lock_guard<std::mutex> g(mu);
  card_capacity = bytes;
}

size_t DeviceMemory::capacity(c10::DeviceIndex d) {
  check_device_index(d);
  std::lock_guard<std::mutex> g(mu);
  return limit(d);
}

void DeviceMemory::set_memory_fraction(double fraction, c10::DeviceIndex d) {
  TORCH_CHECK(fraction >= 0 && fraction <= 1, "Invalid fraction value: ", fraction, ". Allowed range: 0~1");
  check_device_index(d);
  std::lock_guard<std::mutex> g(mu);
  dev(d).fraction = fraction;
}

DeviceMemory& device_memory() {
  static DeviceMemory instance;
  return instance;
}

REGISTER_ALLOCATOR(c10::DeviceType::PrivateUse1, &device_memory());

}  // namespace biren
