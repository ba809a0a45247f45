#include "roofline.h"

#include <algorithm>

namespace biren::sim {

double interpolate(const Table& t, double size) {
  if (t.empty()) return 1.0;
  if (size >= t.front().first) return t.front().second;
  for (size_t i = 1; i < t.size(); ++i) {
    if (size < t[i].first) continue;
    auto [hi_s, hi_e] = t[i - 1];
    auto [lo_s, lo_e] = t[i];
    return lo_e + (hi_e - lo_e) * (size - lo_s) / (hi_s - lo_s);
  }
  return t.back().second;
}

double memory_ns(const Params& p, double bytes) {
  return bytes > 0 ? bytes / (p.mem_bw_Bps * interpolate(p.mem_eff, bytes)) * 1e9 : 0.0;
}

Cost kernel(const Params& p, double flops, double bytes, double compute, double memory, double link) {
  Cost c{flops, bytes, 0, Bound::Launch, compute, memory, link};
  double body = std::max({compute, memory, link});
  c.ns = body + p.launch_ns;
  if (body > p.launch_ns) {
    if (compute >= memory && compute >= link)
      c.bound = Bound::Compute;
    else
      c.bound = memory >= link ? Bound::Memory : Bound::Link;
  }
  return c;
}

Cost generic_cost(const Params& p, double flops, double bytes, bool fp64) {
  double compute = flops / p.vector_flops * 1e9 * (fp64 ? p.fp64_slowdown : 1.0);
  return kernel(p, flops, bytes, compute, memory_ns(p, bytes), 0.0);
}

Cost link_cost(const Params& p, double bytes, double bandwidth_Bps) {
  return kernel(p, 0.0, bytes, 0.0, 0.0, bytes / bandwidth_Bps * 1e9);
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
