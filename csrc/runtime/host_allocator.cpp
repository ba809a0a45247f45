#include "host_allocator.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_set>

namespace biren {
namespace {

std::mutex mu;
std::unordered_set<const void*> pinned;

void free_pinned(void* ptr) {
  {
    std::lock_guard<std::mutex> g(mu);
    pinned.erase(ptr);
  }
  std::free(ptr);
}

struct PinnedAllocator final : public c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    if (n == 0) return c10::DataPtr(nullptr, nullptr, &free_pinned, c10::Device(c10::DeviceType::CPU));
    void* p = std::aligned_alloc(64, (n + 63) / 64 * 64);
    TORCH_CHECK_WITH(OutOfMemoryError, p != nullptr, "biren: could not allocate ", n, " bytes of pinned host memory");
    std::lock_guard<std::mutex> g(mu);
    pinned.insert(p);
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
  return pinned.count(ptr) > 0;
}

}  // namespace biren
