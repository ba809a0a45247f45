#include "op_memory.h"

#include <c10/core/CPUAllocator.h>

#include <algorithm>

#include "allocator.h"

namespace biren {
namespace {

// Smaller requests are left to the device's accounting when the output is adopted: the host memory
// they could touch first is small, and the hot path of small ops pays nothing here.
constexpr size_t kCheckFrom = size_t(1) << 20;

thread_local OpMemoryScope* innermost = nullptr;
c10::Allocator* base = nullptr;  // the CPU allocator in place before ours
c10::DeleterFnPtr base_deleter = nullptr;

void free_checked(void* ptr) {
  if (innermost != nullptr) innermost->on_free(ptr);
  base_deleter(ptr);
}

// The process's CPU allocator: the previous one, plus the card check while a scope is open.
struct CheckedCPUAllocator final : public c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    OpMemoryScope* scope = innermost;
    if (scope == nullptr || n < kCheckFrom) return base->allocate(n);
    device_memory().check_room(scope->device(), scope->held() + n, n);
    c10::DataPtr p = base->allocate(n);
    // Only memory whose deleter is the base's plain one can be followed to its free.
    if (p.get() != nullptr && p.get() == p.get_context() && p.compare_exchange_deleter(base_deleter, &free_checked))
      scope->on_allocate(p.get(), n);
    return p;
  }
  c10::DeleterFnPtr raw_deleter() const override { return base_deleter; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { base->copy_data(dest, src, count); }
};

[[maybe_unused]] const bool installed = [] {
  static CheckedCPUAllocator checked;
  base = c10::GetCPUAllocator();
  base_deleter = base->raw_deleter();
  if (base_deleter != nullptr) c10::SetCPUAllocator(&checked, /*priority=*/1);
  return true;
}();

}  // namespace

OpMemoryScope::OpMemoryScope(c10::DeviceIndex device) : device_(device), outer_(innermost) { innermost = this; }

OpMemoryScope::~OpMemoryScope() { innermost = outer_; }

void OpMemoryScope::on_allocate(void* ptr, size_t nbytes) {
  held_ += nbytes;
  live_.emplace_back(ptr, nbytes);
}

bool OpMemoryScope::on_free(void* ptr) {
  auto it = std::find_if(live_.rbegin(), live_.rend(), [ptr](const auto& e) { return e.first == ptr; });
  if (it == live_.rend()) return false;
  held_ -= it->second;
  live_.erase(std::next(it).base());
  return true;
}

}  // namespace biren
