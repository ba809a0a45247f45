#include "memory_history.h"

#include <c10/util/ApproximateClock.h>

#include <deque>
#include <mutex>
#include <unordered_map>

namespace biren::memory_history {
namespace {

std::mutex mu;
std::atomic<GatherFn> gatherer{nullptr};
size_t max_entries = 0;
std::deque<Entry> trace;
std::unordered_map<uintptr_t, Segment> live;  // by address, every device
std::vector<OomObserver> observers;

}  // namespace

const char* action_name(Action a) {
  switch (a) {
    case Action::Alloc: return "alloc";
    case Action::FreeRequested: return "free_requested";
    case Action::FreeCompleted: return "free_completed";
    case Action::SegmentAlloc: return "segment_alloc";
    case Action::SegmentFree: return "segment_free";
    case Action::Oom: return "oom";
  }
  return "?";
}

void set_recording(GatherFn gather, size_t max) {
  std::lock_guard<std::mutex> g(mu);
  gatherer = gather;
  max_entries = max;
  if (!gather) trace.clear();
  while (trace.size() > max_entries) trace.pop_front();
}

bool recording() { return gatherer.load(std::memory_order_relaxed) != nullptr; }

Context gather() {
  auto fn = gatherer.load(std::memory_order_relaxed);
  return fn ? fn() : nullptr;
}

void record(Action action, c10::DeviceIndex device, const void* addr, size_t size, const Context& context) {
  auto a = reinterpret_cast<uintptr_t>(addr);
  std::lock_guard<std::mutex> g(mu);
  switch (action) {
    case Action::SegmentAlloc: live[a] = Segment{device, a, size, 0, false, context}; break;
    case Action::SegmentFree: live.erase(a); break;
    case Action::Alloc: {
      auto& s = live[a];
      s.active = true;
      s.requested = size;
      s.context = context;
      break;
    }
    case Action::FreeCompleted: {
      auto it = live.find(a);
      if (it != live.end()) it->second.active = false, it->second.requested = 0;
      break;
    }
    default: break;
  }
  if (gatherer.load(std::memory_order_relaxed) == nullptr || max_entries == 0) return;
  trace.push_back(Entry{action, device, a, size, c10::getTime() / 1000, context});
  if (trace.size() > max_entries) trace.pop_front();
}

std::vector<Segment> segments() {
  std::lock_guard<std::mutex> g(mu);
  std::vector<Segment> out;
  out.reserve(live.size());
  for (auto& [a, s] : live) out.push_back(s);
  return out;
}

std::vector<Entry> entries() {
  std::lock_guard<std::mutex> g(mu);
  return {trace.begin(), trace.end()};
}

void attach_oom_observer(OomObserver observer) {
  std::lock_guard<std::mutex> g(mu);
  observers.push_back(std::move(observer));
}

void notify_oom(c10::DeviceIndex device, size_t requested, size_t device_total, size_t device_free) {
  record(Action::Oom, device, reinterpret_cast<const void*>(device_free), requested, gather());
  std::vector<OomObserver> local;
  {
    std::lock_guard<std::mutex> g(mu);
    local = observers;
  }
  for (auto& o : local) o(device, requested, device_total, device_free);
}

}  // namespace biren::memory_history
