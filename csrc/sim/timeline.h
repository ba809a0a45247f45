#pragma once
// Simulated time: one clock per stream and one host-issue clock per device; what each op costs comes
// from roofline.h (ops without a modelled kernel) or the Python cost hook. Parameters come from the chip file
// (torch_biren.sim), never from wall time, so a script gives the same timeline everywhere.
// Clocks are integer picoseconds: a cost is rounded once when charged, so the same op sequence
// gives bit-identical elapsed times wherever on the clock it starts (floating-point sums do not).
#include <c10/core/Device.h>
#include <c10/core/Stream.h>

#include "roofline.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace biren::sim {

using Tick = int64_t;  // picoseconds; int64 holds about 106 days of simulated time
constexpr double kTicksPerNs = 1000.0;
Tick ticks(double ns);  // rounded to the nearest picosecond
inline double to_ns(Tick t) { return static_cast<double>(t) / kTicksPerNs; }

enum class Kind : uint8_t { Triton, Native, Fallback, Copy, Collective };


struct Record {
  std::string name;
  Kind kind;
  c10::DeviceIndex device;
  c10::StreamId stream;
  Tick start, dur;
  double flops, bytes;
  Bound bound;
  uint64_t correlation;  // the profiler's id of the CPU op that issued it (0: none)
};

struct Range {
  std::string name;
  c10::DeviceIndex device;
  Tick start, end;
};

void set_params(Params p);
const Params& params();

// roofline.h's formulas with the live chip's parameters (the fallback's hot path).
inline Cost generic_cost(double flops, double bytes, bool fp64) { return generic_cost(params(), flops, bytes, fp64); }
inline Cost link_cost(double bytes, double bandwidth_Bps) { return link_cost(params(), bytes, bandwidth_Bps); }

// Issue an op on a stream: the host pays its issue cost, the op starts when both the host has
// issued it and the stream is free, and occupies the stream for cost.ns.
void charge(c10::Stream stream, std::string_view name, Kind kind, const Cost& cost);
// Host waits for the stream (synchronous copies, item(), synchronize()). Not permitted while the
// device captures a graph: they raise, naming `what`, and invalidate the capture.
void host_wait(c10::Stream stream, const char* what = nullptr);
void host_wait_device(c10::DeviceIndex device, const char* what = nullptr);
void host_wait_until(c10::DeviceIndex device, Tick t, const char* what = nullptr);
Tick stream_clock(c10::Stream stream);
void stream_wait_until(c10::Stream stream, Tick t);
Tick elapsed(c10::DeviceIndex device);
void reset(c10::DeviceIndex device);  // -1: all devices

// Graphs (torch.biren.graph). While a device captures, charge() appends each kernel to the graph
// instead of running it; a replay charges the host graph_launch_ns once, then runs the kernels back
// to back on the stream, each without its launch_ns and with graph_kernel_gap_ns. Muted charges
// (a replay re-running the captured ops for their numerics) cost nothing.
void capture_begin(c10::Stream stream);
int64_t capture_end(c10::DeviceIndex device);  // the graph's id; raises if the capture was invalidated
void capture_abort(c10::DeviceIndex device);
bool capturing(c10::DeviceIndex device);
void graph_launch(c10::Stream stream, int64_t graph);
size_t graph_size(int64_t graph);
void graph_free(int64_t graph);
bool set_muted(bool on);  // returns the previous setting

// Work the compiler issues while torch.compile compiles on this thread (Inductor's constant folding,
// FakeTensorMode's constant propagation of torch.tensor): it runs, as on CUDA, but is not the
// program's: charge() puts it on no stream (on a card it hides under the compile's seconds of host
// time), op counts keep it apart, the fallback policy does not apply to it.
bool set_compiling(bool on);  // returns the previous setting
bool compiling();

// Recording of what charge() issues, shared by every consumer (torch.profiler's activity profiler,
// torch_biren.profiler): each begins with a mark and ends with what was recorded since it.
struct Mark {
  size_t records, ranges;
  std::vector<Tick> device_now;  // each device's clock when recording began
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

}  // namespace biren::sim
