#include "host_allocator.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <map>

namespace biren {
namespace {

std::mutex mu;
// start -> size of each pinned block: a tensor on a slice of a pinned storage points inside one.
std::map<const char*, size_t> pinned;

void free_pinned(void* ptr) {
  {
    std::lock_guard<std::mutex> g(mu);
    pinned.erase(static_cast<const char*>(ptr));
  }
  std::free(ptr);
}

struct PinnedAllocator final : public c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    if (n == 0) return c10::DataPtr(nullptr, nullptr, &free_pinned, c10::Device(c10::DeviceType::CPU));
    size_t size = (n + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, size);
    TORCH_CHECK_WITH(OutOfMemoryError, p != nullptr, "biren: could not allocate ", n, " bytes of pinned host memory");
    std::lock_guard<std::mutex> g(mu);
    pinned.emplace(static_cast<const char*>(p), size);
    return c10::DataPtr(p, p, &free_pinned, c10::Device(c10::DeviceType::CPU));
  }
  c10::DeleterFnPtr raw_deleter() const override { return &free_pinned; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
};

}  // namespace

c10::Allocator* pinned_allocator() {
  static PinnedAllocator a;
  return &a;
}

bool is_pinned_ptr(const void* ptr) {
  std::lock_guard<std::mutex> g(mu);
  auto* p = static_cast<const char*>(ptr);
  auto it = pinned.upper_bound(p);
  if (it == pinned.begin()) return false;
  --it;
  return p < it->first + it->second;
}

}  // namespace biren
