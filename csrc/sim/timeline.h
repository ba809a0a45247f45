#pragma once
// Simulated time: one clock per stream and one host-issue clock per device, plus the generic
// roofline cost charged to ops that have no modelled kernel. Parameters come from the chip file
// (torch_biren.sim), never from wall time, so a script gives the same timeline everywhere.
#include <c10/core/Device.h>
#include <c10/core/Stream.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace biren::sim {

struct Params {
  double launch_ns = 0;      // fixed device-side cost of one kernel
  double host_issue_ns = 0;  // host time to issue one op; launch-bound regimes come from here
  double mem_bw_Bps = 1;     // effective device-memory bandwidth
  double vector_flops = 1;   // FP32 vector peak (elementwise, reductions)
  double host_link_Bps = 1;  // PCIe, each way
  double card_link_Bps = 1;  // card-to-card
  double fp64_slowdown = 1;  // FP64 is emulated on BR1xx
  std::vector<std::pair<double, double>> mem_eff;  // (min bytes, efficiency), descending
};

enum class Kind : uint8_t { Triton, Native, Fallback, Copy, Collective };
enum class Bound : uint8_t { Compute, Memory, Launch, Link };

struct Cost {
  double flops = 0;
  double bytes = 0;
  double ns = 0;
  Bound bound = Bound::Launch;
};

struct Record {
  std::string name;
  Kind kind;
  c10::DeviceIndex device;
  c10::StreamId stream;
  double start_ns, dur_ns, flops, bytes;
  Bound bound;
  uint64_t correlation;  // the profiler's id of the CPU op that issued it (0: none)
};

struct Range {
  std::string name;
  c10::DeviceIndex device;
  double start_ns, end_ns;
};

void set_params(Params p);
const Params& params();

double mem_efficiency(double bytes);
Cost generic_cost(double flops, double bytes, bool fp64);
Cost link_cost(double bytes, double bandwidth_Bps);

// Issue an op on a stream: the host pays its issue cost, the op starts when both the host has
// issued it and the stream is free, and occupies the stream for cost.ns.
void charge(c10::Stream stream, std::string_view name, Kind kind, const Cost& cost);
// Host waits for the stream (synchronous copies, item(), synchronize()).
void host_wait(c10::Stream stream);
void host_wait_device(c10::DeviceIndex device);
void host_wait_until(c10::DeviceIndex device, double t_ns);
double stream_clock(c10::Stream stream);
void stream_wait_until(c10::Stream stream, double t_ns);
double elapsed_ns(c10::DeviceIndex device);
void reset(c10::DeviceIndex device);  // -1: all devices

// Recording of what charge() issues, shared by every consumer (torch.profiler's activity profiler,
// torch_biren.profiler): each begins with a mark and ends with what was recorded since it.
struct Mark {
  size_t records, ranges;
  std::vector<double> device_now_ns;  // each device's clock when recording began
};
struct Recording {
  std::vector<Record> records;
  std::vector<Range> ranges;
};
Mark begin_recording();
Recording end_recording(const Mark& mark);
bool recording();
// The CPU op on this thread that charges belong to (pushed by the activity profiler per op).
void push_correlation(uint64_t id);
void pop_correlation();

const char* kind_name(Kind k);
const char* bound_name(Bound b);

}  // namespace biren::sim
