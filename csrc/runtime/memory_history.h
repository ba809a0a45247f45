#pragma once
// What the memory snapshot shows (torch.biren.memory._snapshot, in torch.cuda.memory's format): a
// mirror of the allocator's segments kept beside it, and, while _record_memory_history is on, a
// bounded trace of allocator actions with the stack that caused each. Kept apart from the
// allocator so that a snapshot (also one taken by an OOM observer) never needs the allocator's lock.
#include <c10/core/Allocator.h>
#include <c10/core/Device.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace biren::memory_history {

enum class Action : uint8_t { Alloc, FreeRequested, FreeCompleted, SegmentAlloc, SegmentFree, Oom };
const char* action_name(Action a);

using Context = std::shared_ptr<c10::GatheredContext>;
using GatherFn = Context (*)();

struct Entry {
  Action action;
  c10::DeviceIndex device;
  uintptr_t addr;  // for an OOM: the device's free bytes, as CUDA reports it
  size_t size;
  int64_t time_us;
  Context context;
};

struct Segment {
  c10::DeviceIndex device;
  uintptr_t addr;
  size_t size;
  size_t requested;  // 0 when the block is free (cached)
  bool active;
  Context context;  // of the allocation now in it (or the last one, when free)
};

// gather: how to capture the current stack (set by the bindings); nullptr turns recording off.
void set_recording(GatherFn gather, size_t max_entries);
bool recording();
// The stack of the current call when recording, else nullptr. Call before taking allocator locks.
Context gather();

void record(Action action, c10::DeviceIndex device, const void* addr, size_t size, const Context& context);

std::vector<Segment> segments();
std::vector<Entry> entries();

// Called when an out-of-memory error is about to be raised (with the allocator's lock held: an
// observer may take a snapshot, not allocate on the device).
using OomObserver = std::function<void(int64_t device, size_t requested, size_t device_total, size_t device_free)>;
void attach_oom_observer(OomObserver observer);
void notify_oom(c10::DeviceIndex device, size_t requested, size_t device_total, size_t device_free);

}  // namespace biren::memory_history
