#include "timeline.h"

#include <ATen/record_function.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <unordered_map>

#include "../runtime/device.h"

namespace biren::sim {
namespace {

struct DeviceClock {
  Tick host = 0;
  std::unordered_map<c10::StreamId, Tick> streams;
  Tick& stream(c10::StreamId id) { return streams[id]; }
};

struct Kernel {
  std::string name;
  Kind kind;
  Tick dur;
  double flops, bytes;
  Bound bound;
};

struct Capture {
  c10::StreamId stream;
  std::vector<Kernel> kernels;
  std::string error;  // the rule a capture broke; it can no longer end as a graph
};

std::mutex mu;
Params current;
std::vector<DeviceClock> clocks;
std::atomic<bool> profiling_on{false};
int recorders = 0;  // consumers between begin_recording and end_recording
std::vector<Record> records;
std::vector<Range> ranges;
std::vector<std::pair<std::string, Tick>> open_ranges;  // per thread would be nicer; ops are single-threaded
at::CallbackHandle range_handle = 0;
thread_local std::vector<uint64_t> correlations;
std::unordered_map<c10::DeviceIndex, Capture> captures;
std::unordered_map<int64_t, std::vector<Kernel>> graphs;
int64_t next_graph = 1;
bool muted = false;
thread_local bool compiling_now = false;

DeviceClock& clock_of(c10::DeviceIndex d) {
  if (clocks.size() <= static_cast<size_t>(d)) clocks.resize(d + 1);
  return clocks[d];
}

Tick device_now(DeviceClock& c) {
  Tick t = c.host;
  for (auto& kv : c.streams) t = std::max(t, kv.second);
  return t;
}

std::unique_ptr<at::ObserverContext> range_start(const at::RecordFunction& fn) {
  std::lock_guard<std::mutex> g(mu);
  auto dev = biren::current_device();
  open_ranges.emplace_back(fn.name(), device_now(clock_of(dev)));
  return nullptr;
}

void range_end(const at::RecordFunction& fn, at::ObserverContext*) {
  std::lock_guard<std::mutex> g(mu);
  auto dev = biren::current_device();
  for (auto it = open_ranges.rbegin(); it != open_ranges.rend(); ++it) {
    if (it->first == fn.name()) {
      ranges.push_back({it->first, dev, it->second, device_now(clock_of(dev))});
      open_ranges.erase(std::next(it).base());
      break;
    }
  }
}

// Raises when `device` is capturing: a host wait would read results the graph has not produced.
void check_not_capturing(c10::DeviceIndex device, const char* what) {
  auto it = captures.find(device);
  if (it == captures.end()) return;
  std::string msg = std::string("biren: ") + (what ? what : "a host wait for the device (synchronize(), "
                    "Event.synchronize(), a blocking copy to the host)") +
                    " is not permitted while biren:" + std::to_string(device) + " is capturing a graph (stream " +
                    std::to_string(it->second.stream) + "): the captured work has not run, so the host cannot wait "
                    "for it or read its results (CUDA: operation not permitted when stream is capturing). The "
                    "capture is invalidated; do this after the torch.biren.graph block, once replay() has run.";
  if (it->second.error.empty()) it->second.error = msg;
  TORCH_CHECK(false, msg);
}

}  // namespace

Tick ticks(double ns) { return static_cast<Tick>(std::llround(ns * kTicksPerNs)); }

void set_params(Params p) {
  for (auto* t : {&p.mem_eff, &p.matrix_eff})
    std::sort(t->begin(), t->end(), [](auto& a, auto& b) { return a.first > b.first; });
  std::lock_guard<std::mutex> g(mu);
  current = std::move(p);
}

const Params& params() { return current; }

void charge(c10::Stream stream, std::string_view name, Kind kind, const Cost& cost) {
  if (compiling_now) return;
  std::lock_guard<std::mutex> g(mu);
  if (muted) return;
  Tick dur = ticks(cost.ns);
  auto cap = captures.find(stream.device_index());
  if (cap != captures.end()) {  // captured kernels do not run, as on CUDA
    cap->second.kernels.push_back({std::string(name), kind, dur, cost.flops, cost.bytes, cost.bound});
    return;
  }
  auto& c = clock_of(stream.device_index());
  c.host += ticks(current.host_issue_ns);
  Tick& s = c.stream(stream.id());
  Tick start = std::max(s, c.host);
  s = start + dur;
  if (profiling_on.load(std::memory_order_relaxed))
    records.push_back({std::string(name), kind, stream.device_index(), stream.id(), start, dur, cost.flops,
                       cost.bytes, cost.bound, correlations.empty() ? 0 : correlations.back()});
}

void host_wait(c10::Stream stream, const char* what) {
  std::lock_guard<std::mutex> g(mu);
  check_not_capturing(stream.device_index(), what);
  auto& c = clock_of(stream.device_index());
  c.host = std::max(c.host, c.stream(stream.id()));
}

void host_wait_device(c10::DeviceIndex device, const char* what) {
  std::lock_guard<std::mutex> g(mu);
  check_not_capturing(device, what);
  auto& c = clock_of(device);
  c.host = device_now(c);
}

void host_wait_until(c10::DeviceIndex device, Tick t, const char* what) {
  std::lock_guard<std::mutex> g(mu);
  check_not_capturing(device, what);
  auto& c = clock_of(device);
  c.host = std::max(c.host, t);
}

Tick stream_clock(c10::Stream stream) {
  std::lock_guard<std::mutex> g(mu);
  return clock_of(stream.device_index()).stream(stream.id());
}

void stream_wait_until(c10::Stream stream, Tick t) {
  std::lock_guard<std::mutex> g(mu);
  Tick& s = clock_of(stream.device_index()).stream(stream.id());
  s = std::max(s, t);
}

Tick elapsed(c10::DeviceIndex device) {
  std::lock_guard<std::mutex> g(mu);
  return device_now(clock_of(device));
}

void reset(c10::DeviceIndex device) {
  std::lock_guard<std::mutex> g(mu);
  if (device < 0) {
    clocks.clear();
  } else if (static_cast<size_t>(device) < clocks.size()) {
    clocks[device] = DeviceClock{};
  }
}

void capture_begin(c10::Stream stream) {
  std::lock_guard<std::mutex> g(mu);
  auto d = stream.device_index();
  auto it = captures.find(d);
  TORCH_CHECK(it == captures.end(), "biren: biren:", int(d), " is already capturing a graph (stream ",
              it == captures.end() ? 0 : it->second.stream, "); end that capture before beginning another");
  captures[d] = Capture{stream.id(), {}, {}};
}

int64_t capture_end(c10::DeviceIndex device) {
  std::lock_guard<std::mutex> g(mu);
  auto it = captures.find(device);
  TORCH_CHECK(it != captures.end(), "biren: capture_end() on biren:", int(device), ", which is not capturing a graph");
  Capture cap = std::move(it->second);
  captures.erase(it);
  TORCH_CHECK(cap.error.empty(), "biren: the graph capture on biren:", int(device),
              " was invalidated by an earlier error during capture: ", cap.error);
  int64_t id = next_graph++;
  graphs[id] = std::move(cap.kernels);
  return id;
}

void capture_abort(c10::DeviceIndex device) {
  std::lock_guard<std::mutex> g(mu);
  captures.erase(device);
}

bool capturing(c10::DeviceIndex device) {
  std::lock_guard<std::mutex> g(mu);
  return captures.count(device) > 0;
}

void graph_launch(c10::Stream stream, int64_t graph) {
  std::lock_guard<std::mutex> g(mu);
  auto it = graphs.find(graph);
  TORCH_CHECK(it != graphs.end(), "biren: replay of a graph that was reset or never captured");
  TORCH_CHECK(captures.count(stream.device_index()) == 0, "biren: replay() of a graph is not permitted while biren:",
              int(stream.device_index()), " is capturing a graph");
  auto& c = clock_of(stream.device_index());
  c.host += ticks(current.graph_launch_ns);  // one launch for the whole graph, not one issue per kernel
  Tick& s = c.stream(stream.id());
  s = std::max(s, c.host);
  // Each captured cost includes one launch_ns (generic_cost, link_cost and sim.costs all add it);
  // inside a graph the kernels follow each other with only the device-side gap.
  const Tick launch = ticks(current.launch_ns), gap = ticks(current.graph_kernel_gap_ns);
  const bool prof = profiling_on.load(std::memory_order_relaxed);
  for (const auto& k : it->second) {
    Tick dur = std::max<Tick>(0, k.dur - launch) + gap;
    if (prof)
      records.push_back({k.name, k.kind, stream.device_index(), stream.id(), s, dur, k.flops, k.bytes, k.bound,
                         correlations.empty() ? 0 : correlations.back()});
    s += dur;
  }
}

size_t graph_size(int64_t graph) {
  std::lock_guard<std::mutex> g(mu);
  auto it = graphs.find(graph);
  return it == graphs.end() ? 0 : it->second.size();
}

void graph_free(int64_t graph) {
  std::lock_guard<std::mutex> g(mu);
  graphs.erase(graph);
}

bool set_muted(bool on) {
  std::lock_guard<std::mutex> g(mu);
  return std::exchange(muted, on);
}

bool set_compiling(bool on) { return std::exchange(compiling_now, on); }

bool compiling() { return compiling_now; }

Mark begin_recording() {
  std::lock_guard<std::mutex> g(mu);
  if (recorders++ == 0) {
    range_handle = at::addGlobalCallback(
        at::RecordFunctionCallback(range_start, range_end).scopes({at::RecordScope::USER_SCOPE}));
    profiling_on = true;
  }
  Mark m{records.size(), ranges.size(), {}};
  for (auto& c : clocks) m.device_now.push_back(device_now(c));
  return m;
}

Recording end_recording(const Mark& mark) {
  std::lock_guard<std::mutex> g(mu);
  TORCH_CHECK(recorders > 0, "end_recording without begin_recording");
  Recording out;
  if (mark.records < records.size()) out.records.assign(records.begin() + mark.records, records.end());
  if (mark.ranges < ranges.size()) out.ranges.assign(ranges.begin() + mark.ranges, ranges.end());
  if (--recorders == 0) {
    at::removeCallback(range_handle);
    range_handle = 0;
    profiling_on = false;
    records.clear();
    ranges.clear();
    open_ranges.clear();
  }
  return out;
}

bool recording() { return profiling_on.load(std::memory_order_relaxed); }

void push_correlation(uint64_t id) { correlations.push_back(id); }

void pop_correlation() {
  if (!correlations.empty()) correlations.pop_back();
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Triton: return "triton";
    case Kind::Native: return "native";
    case Kind::Fallback: return "fallback";
    case Kind::Copy: return "copy";
    case Kind::Collective: return "collective";
  }
  return "?";
}

}  // namespace biren::sim
