#include "timeline.h"

#include <ATen/record_function.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "../runtime/device.h"

namespace biren::sim {
namespace {

struct DeviceClock {
  double host_ns = 0;
  std::unordered_map<c10::StreamId, double> streams;
  double& stream(c10::StreamId id) { return streams[id]; }
};

std::mutex mu;
Params current;
std::vector<DeviceClock> clocks;
std::atomic<bool> profiling_on{false};
int recorders = 0;  // consumers between begin_recording and end_recording
std::vector<Record> records;
std::vector<Range> ranges;
std::vector<std::pair<std::string, double>> open_ranges;  // per thread would be nicer; ops are single-threaded
at::CallbackHandle range_handle = 0;
thread_local std::vector<uint64_t> correlations;

DeviceClock& clock_of(c10::DeviceIndex d) {
  if (clocks.size() <= static_cast<size_t>(d)) clocks.resize(d + 1);
  return clocks[d];
}

double device_now(DeviceClock& c) {
  double t = c.host_ns;
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

}  // namespace

void set_params(Params p) {
  std::sort(p.mem_eff.begin(), p.mem_eff.end(), [](auto& a, auto& b) { return a.first > b.first; });
  std::lock_guard<std::mutex> g(mu);
  current = std::move(p);
}

const Params& params() { return current; }

double mem_efficiency(double bytes) {
  // Rows joined by straight lines (flat beyond the ends): a step table would make an op just above
  // a threshold finish sooner than one just below it.
  const auto& t = current.mem_eff;  // largest min_bytes first
  if (t.empty()) return 1.0;
  if (bytes >= t.front().first) return t.front().second;
  for (size_t i = 1; i < t.size(); ++i) {
    if (bytes < t[i].first) continue;
    auto [hi_b, hi_e] = t[i - 1];
    auto [lo_b, lo_e] = t[i];
    return lo_e + (hi_e - lo_e) * (bytes - lo_b) / (hi_b - lo_b);
  }
  return t.back().second;
}

Cost generic_cost(double flops, double bytes, bool fp64) {
  Cost c{flops, bytes, 0, Bound::Launch};
  double compute = flops / current.vector_flops * 1e9 * (fp64 ? current.fp64_slowdown : 1.0);
  double memory = bytes > 0 ? bytes / (current.mem_bw_Bps * mem_efficiency(bytes)) * 1e9 : 0.0;
  double body = std::max(compute, memory);
  c.ns = body + current.launch_ns;
  if (body > current.launch_ns) c.bound = compute >= memory ? Bound::Compute : Bound::Memory;
  return c;
}

Cost link_cost(double bytes, double bandwidth_Bps) {
  double body = bytes / bandwidth_Bps * 1e9;
  return Cost{0, bytes, body + current.launch_ns, body > current.launch_ns ? Bound::Link : Bound::Launch};
}

void charge(c10::Stream stream, std::string_view name, Kind kind, const Cost& cost) {
  std::lock_guard<std::mutex> g(mu);
  auto& c = clock_of(stream.device_index());
  c.host_ns += current.host_issue_ns;
  double& s = c.stream(stream.id());
  double start = std::max(s, c.host_ns);
  s = start + cost.ns;
  if (profiling_on.load(std::memory_order_relaxed))
    records.push_back({std::string(name), kind, stream.device_index(), stream.id(), start, cost.ns,
                       cost.flops, cost.bytes, cost.bound, correlations.empty() ? 0 : correlations.back()});
}

void host_wait(c10::Stream stream) {
  std::lock_guard<std::mutex> g(mu);
  auto& c = clock_of(stream.device_index());
  c.host_ns = std::max(c.host_ns, c.stream(stream.id()));
}

void host_wait_device(c10::DeviceIndex device) {
  std::lock_guard<std::mutex> g(mu);
  auto& c = clock_of(device);
  c.host_ns = device_now(c);
}

void host_wait_until(c10::DeviceIndex device, double t_ns) {
  std::lock_guard<std::mutex> g(mu);
  auto& c = clock_of(device);
  c.host_ns = std::max(c.host_ns, t_ns);
}

double stream_clock(c10::Stream stream) {
  std::lock_guard<std::mutex> g(mu);
  return clock_of(stream.device_index()).stream(stream.id());
}

void stream_wait_until(c10::Stream stream, double t_ns) {
  std::lock_guard<std::mutex> g(mu);
  double& s = clock_of(stream.device_index()).stream(stream.id());
  s = std::max(s, t_ns);
}

double elapsed_ns(c10::DeviceIndex device) {
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

Mark begin_recording() {
  std::lock_guard<std::mutex> g(mu);
  if (recorders++ == 0) {
    range_handle = at::addGlobalCallback(
        at::RecordFunctionCallback(range_start, range_end).scopes({at::RecordScope::USER_SCOPE}));
    profiling_on = true;
  }
  Mark m{records.size(), ranges.size(), {}};
  for (auto& c : clocks) m.device_now_ns.push_back(device_now(c));
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

const char* bound_name(Bound b) {
  switch (b) {
    case Bound::Compute: return "compute";
    case Bound::Memory: return "memory";
    case Bound::Launch: return "launch";
    case Bound::Link: return "link";
  }
  return "?";
}

}  // namespace biren::sim
