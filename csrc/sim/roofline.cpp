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

double die_link_ns(const Params& p, double bytes) {
  if (bytes <= 0 || p.die_share <= 0 || p.die_link_Bps <= 0) return 0.0;
  return p.die_latency_ns + bytes * p.die_share / p.die_link_Bps * 1e9;
}

double memory_ns(const Params& p, double bytes) {
  if (bytes <= 0) return 0.0;
  return std::max(bytes / (p.mem_bw_Bps * interpolate(p.mem_eff, bytes)) * 1e9, die_link_ns(p, bytes));
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

Cost die_copy_cost(const Params& p, double bytes) {
  double link = bytes > 0 ? p.die_latency_ns + bytes / (p.die_link_Bps / 2) * 1e9 : 0.0;
  return kernel(p, 0.0, bytes, 0.0, memory_ns(p, bytes), link);
}

const char* peer_route(const Params& p, int src, int dst) {
  int per_card = std::max(1, p.card_devices);
  if (src / per_card != dst / per_card) return "card";
  if (p.die_devices > 0 && p.die_link_Bps > 0 && src / p.die_devices != dst / p.die_devices) return "die";
  return "local";
}

Cost peer_copy_cost(const Params& p, double bytes, int src, int dst) {
  std::string route = peer_route(p, src, dst);
  if (route == "card") return link_cost(p, bytes, p.card_link_Bps);
  if (route == "die") return die_copy_cost(p, bytes);
  return generic_cost(p, 0.0, 2 * bytes, false);
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
