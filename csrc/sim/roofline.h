#pragma once
// The roofline every kernel's time is built from, once for both languages: the C++ fallback's hot
// path calls it directly, torch_biren.sim.costs through _C._SimParams (for any chip, not only the
// live one). Parameters come from the chip file (torch_biren.sim.chip.timeline_params()).
#include <string>
#include <utility>
#include <vector>

namespace biren::sim {

// (min size, efficiency) rows, largest size first.
using Table = std::vector<std::pair<double, double>>;

struct Params {
  double launch_ns = 0;      // fixed device-side cost of one kernel
  double host_issue_ns = 0;  // host time to issue one op; launch-bound regimes come from here
  double mem_bw_Bps = 1;     // effective device-memory bandwidth
  double vector_flops = 1;   // FP32 vector peak (elementwise, reductions)
  double host_link_Bps = 1;  // PCIe, each way
  double card_link_Bps = 1;  // card-to-card, each way: this device's share of the card's links
  // The die link of a multi-die card (sim/chip.py module doc). die_link_Bps: bidirectional, this
  // device's share (0: none). die_share: the fraction of memory traffic that crosses it (UMA
  // interleaving; 0 for die-local devices). card_devices: devices per card; die_devices: devices per
  // die (0 when one device spans the dies), so the runtime knows which devices share a card or die.
  double die_link_Bps = 0;
  double die_share = 0;
  double die_latency_ns = 0;
  int card_devices = 1;
  int die_devices = 0;
  double fp64_slowdown = 1;  // FP64 is emulated on BR1xx
  double graph_launch_ns = 0;     // host time to launch one captured graph
  double graph_kernel_gap_ns = 0; // device-side gap between kernels of a replayed graph
  Table mem_eff;     // bytes -> fraction of mem_bw_Bps reached
  Table matrix_eff;  // FLOPs -> fraction of the matrix peak reached (GEMM and attention, sim/costs.py)
};

enum class Bound : uint8_t { Compute, Memory, Launch, Link };

struct Cost {
  double flops = 0;
  double bytes = 0;
  double ns = 0;
  Bound bound = Bound::Launch;
  double compute_ns = 0, memory_ns = 0, link_ns = 0;  // the parts the longest of which is ns - launch
};

// Rows joined by straight lines, flat beyond the ends: a step table would make work just above a
// threshold finish sooner than work just below it. 1 for an empty table.
double interpolate(const Table& table, double size);
// Bytes through device memory: after the size-efficiency table, and no sooner than the share that
// crosses the die link (UMA) has crossed it (die_link_ns).
double memory_ns(const Params& p, double bytes);
// The die-link time of a kernel moving `bytes` through interleaved memory: die_share of them cross,
// half each way (every die reads and writes the others' memory alike), each direction carrying
// die_link_Bps / 2, so latency + bytes * die_share / die_link_Bps. 0 without a die share.
double die_link_ns(const Params& p, double bytes);
// A kernel's time: the longest of its compute, memory and link times plus the launch; its bound
// names the longest, or launch when the launch exceeds it.
Cost kernel(const Params& p, double flops, double bytes, double compute_ns, double memory_ns, double link_ns);
// Roofline on the vector units, for ops without a modelled kernel.
Cost generic_cost(const Params& p, double flops, double bytes, bool fp64);
// A transfer over a link (PCIe, card links) of bandwidth_Bps each way.
Cost link_cost(const Params& p, double bytes, double bandwidth_Bps);
// A copy from one die's memory to another's over the die link, one way (die_link_Bps / 2), with its
// latency; the read and the write run on different dies at the same time (memory_ns of bytes).
Cost die_copy_cost(const Params& p, double bytes);
// A copy between two devices: over the card links between cards; over the die link between dies of
// one card (NUMA, SVI); through the die's memory (read and write) between instances of one die.
Cost peer_copy_cost(const Params& p, double bytes, int src, int dst);
const char* peer_route(const Params& p, int src, int dst);  // "card", "die" or "local"


const char* bound_name(Bound b);

}  // namespace biren::sim
