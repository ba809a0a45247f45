// Python bindings of torch_biren._C. The only file that includes torch/extension.h (it is slow to
// compile); the runtime, ops and timeline include ATen/c10 headers only.
#include <algorithm>
#include <torch/csrc/Generator.h>
#include <torch/csrc/jit/python/pybind_utils.h>
#include <torch/csrc/profiler/combined_traceback.h>
#include <torch/extension.h>

#include "aten/cpu_views.h"
#include "aten/fallback.h"
#include "runtime/allocator.h"
#include "runtime/device.h"
#include "runtime/generator.h"
#include "runtime/memory_history.h"
#include "runtime/stream.h"
#include "sim/timeline.h"

namespace py = pybind11;
using namespace biren;

// From torch/csrc/profiler/python/combined_traceback.h, which needs nlohmann/json (not shipped in
// torch's include directory); both are exported by libtorch_python.
namespace torch {
std::vector<py::object> py_symbolize(std::vector<CapturedTraceback*>& to_symbolize);
void installCapturedTracebackPython();
}  // namespace torch

namespace {

sim::Bound parse_bound(const std::string& b) {
  if (b == "compute") return sim::Bound::Compute;
  if (b == "memory") return sim::Bound::Memory;
  if (b == "link") return sim::Bound::Link;
  TORCH_CHECK(b == "launch", "unknown bound '", b, "' (compute, memory, launch or link)");
  return sim::Bound::Launch;
}

sim::Kind parse_kind(const std::string& k) {
  if (k == "triton") return sim::Kind::Triton;
  if (k == "native") return sim::Kind::Native;
  if (k == "fallback") return sim::Kind::Fallback;
  if (k == "copy") return sim::Kind::Copy;
  TORCH_CHECK(k == "collective", "unknown kernel kind '", k, "'");
  return sim::Kind::Collective;
}

py::tuple cost_tuple(const sim::Cost& c) { return py::make_tuple(c.flops, c.bytes, c.ns, sim::bound_name(c.bound)); }

sim::Table table(const py::handle& rows) {
  sim::Table t;
  for (auto row : rows) t.push_back(row.cast<std::pair<double, double>>());
  std::sort(t.begin(), t.end(), [](auto& a, auto& b) { return a.first > b.first; });
  return t;
}

// torch_biren.sim.chip.Chip.timeline_params() -> the C++ parameters.
sim::Params params_from(const py::dict& d) {
  sim::Params p;
  p.launch_ns = d["launch_ns"].cast<double>();
  p.host_issue_ns = d["host_issue_ns"].cast<double>();
  p.mem_bw_Bps = d["mem_bw_Bps"].cast<double>();
  p.vector_flops = d["vector_flops"].cast<double>();
  p.host_link_Bps = d["host_link_Bps"].cast<double>();
  p.card_link_Bps = d["card_link_Bps"].cast<double>();
  p.die_link_Bps = d["die_link_Bps"].cast<double>();
  p.die_share = d["die_share"].cast<double>();
  p.die_latency_ns = d["die_latency_ns"].cast<double>();
  p.card_devices = d["card_devices"].cast<int>();
  p.die_devices = d["die_devices"].cast<int>();
  p.fp64_slowdown = d["fp64_slowdown"].cast<double>();
  p.graph_launch_ns = d["graph_launch_ns"].cast<double>();
  p.graph_kernel_gap_ns = d["graph_kernel_gap_ns"].cast<double>();
  p.mem_eff = table(d["mem_eff_table"]);
  p.matrix_eff = table(d["matrix_eff_table"]);
  return p;
}

void set_params(const py::dict& d) {
  sim::set_params(params_from(d));
  clear_cost_memo();
}

// (flops, bytes, ns, bound, compute_ns, memory_ns, link_ns): torch_biren.sim.costs.Cost's fields.
py::tuple full_cost(const sim::Cost& c) {
  return py::make_tuple(c.flops, c.bytes, c.ns, sim::bound_name(c.bound), c.compute_ns, c.memory_ns, c.link_ns);
}

memory_history::Context gather_python() { return torch::CapturedTraceback::gather(true, true, false); }
memory_history::Context gather_python_cpp() { return torch::CapturedTraceback::gather(true, true, true); }

// torch.cuda.memory._snapshot's structure, which torch.cuda._memory_viz reads.
py::dict memory_snapshot() {
  namespace mh = memory_history;
  auto segs = mh::segments();
  auto trace = mh::entries();
  std::vector<torch::CapturedTraceback*> to_symbolize;
  auto want = [&](const mh::Context& c) {
    if (auto* tb = dynamic_cast<torch::CapturedTraceback*>(c.get())) to_symbolize.push_back(tb);
  };
  for (auto& s : segs) want(s.context);
  for (auto& e : trace) want(e.context);
  auto frames = torch::py_symbolize(to_symbolize);
  size_t next = 0;
  auto frames_of = [&](const mh::Context& c) -> py::object {
    return dynamic_cast<torch::CapturedTraceback*>(c.get()) ? frames.at(next++) : py::list();
  };
  std::sort(segs.begin(), segs.end(), [](auto& a, auto& b) { return std::tie(a.device, a.addr) < std::tie(b.device, b.addr); });
  py::list segments;
  int max_device = -1;
  for (auto& s : segs) {
    py::dict block;  // one block per segment: this allocator does not split blocks
    block["address"] = s.addr;
    block["size"] = s.size;
    block["requested_size"] = s.requested;
    block["state"] = s.active ? "active_allocated" : "inactive";
    block["frames"] = frames_of(s.context);
    py::dict seg;
    seg["device"] = static_cast<int>(s.device);
    seg["address"] = s.addr;
    seg["total_size"] = s.size;
    seg["allocated_size"] = s.active ? s.size : 0;
    seg["active_size"] = s.active ? s.size : 0;
    seg["requested_size"] = s.requested;
    seg["stream"] = 0;
    seg["segment_type"] = s.size < (size_t(1) << 20) ? "small" : "large";
    seg["segment_pool_id"] = py::make_tuple(0, 0);
    seg["is_expandable"] = false;
    seg["frames"] = py::list();
    py::list blocks;
    blocks.append(block);
    seg["blocks"] = blocks;
    segments.append(seg);
    max_device = std::max(max_device, static_cast<int>(s.device));
  }
  for (auto& e : trace) max_device = std::max(max_device, static_cast<int>(e.device));
  py::list device_traces;
  for (int d = 0; d <= std::max(max_device, static_cast<int>(device_count()) - 1); ++d) device_traces.append(py::list());
  for (auto& e : trace) {
    py::dict t;
    t["action"] = mh::action_name(e.action);
    t["addr"] = e.addr;
    t["size"] = e.size;
    t["stream"] = 0;
    t["time_us"] = e.time_us;
    t["frames"] = frames_of(e.context);
    if (e.action == mh::Action::Oom) t["device_free"] = e.addr;
    device_traces[e.device].cast<py::list>().append(t);
  }
  py::dict out;
  out["segments"] = segments;
  out["device_traces"] = device_traces;
  out["allocator_settings"] = py::dict();
  out["external_annotations"] = py::list();
  return out;
}

c10::Stream stream_of(int64_t device, int64_t stream_id) {
  return c10::Stream(c10::Stream::UNSAFE, c10::Device(c10::DeviceType::PrivateUse1, device), stream_id);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "torch_biren native runtime";

  // Devices
  m.def("_device_count", [] { return static_cast<int>(device_count()); });
  m.def("_get_device", [] { return static_cast<int>(current_device()); });
  m.def("_set_device", [](int d) { set_current_device(static_cast<c10::DeviceIndex>(d)); });
  m.def("_lazy_init", &lazy_init);
  m.def("_is_initialized", &is_initialized);
  m.def("_in_bad_fork", &in_bad_fork);
  m.def("_set_instances_per_card", &set_instances_per_card);
  m.def("_set_unavailable", &set_unavailable);
  m.def("_current_stream", [](int d) { auto s = current_stream(d); return py::make_tuple(s.id(), (int)s.device_index()); });

  // Memory
  m.def("_set_capacity", [](size_t bytes) { device_memory().set_capacity(bytes); });
  m.def("_capacity", [](int d) { return device_memory().capacity(d); });
  m.def("_set_memory_fraction", [](double f, int d) { device_memory().set_memory_fraction(f, d); });
  m.def("_empty_cache", [](int d) { device_memory().empty_cache(d); });
  m.def("_mem_get_info", [](int d) { return device_memory().getMemoryInfo(d); });
  m.def("_memory_record_history", [](bool enabled, bool cpp, size_t max_entries) {
    if (enabled) torch::installCapturedTracebackPython();
    memory_history::set_recording(enabled ? (cpp ? &gather_python_cpp : &gather_python) : nullptr, max_entries);
  });
  m.def("_memory_snapshot", &memory_snapshot);
  m.def("_memory_attach_oom_observer", [](py::object fn) {
    // Leaked like the cost hook below: it lives as long as the process.
    auto holder = std::shared_ptr<py::object>(new py::object(std::move(fn)), [](py::object*) {});
    memory_history::attach_oom_observer([holder](int64_t d, size_t req, size_t total, size_t free) {
      py::gil_scoped_acquire g;
      (*holder)(d, req, total, free);
    });
  });

  // Random generators
  m.def("_default_generator", [](int d) {
    return py::reinterpret_steal<py::object>(THPGenerator_initDefaultGenerator(default_generator(d)));
  });

  // Zero-copy bridge for ops implemented in Python (Triton kernels see CPU views of device memory)
  m.def("_cpu_view", [](const at::Tensor& t) {
    TORCH_CHECK(t.is_privateuseone(), "_cpu_view expects a biren tensor, got one on ", t.device());
    return cpu_view(t);
  });

  m.def("_set_fp64_exempt", &set_fp64_exempt);

  // Simulated time
  m.def("_sim_set_params", &set_params);
  // The roofline (csrc/sim/roofline.h) for any chip's parameters: what torch_biren.sim.costs builds on.
  py::class_<sim::Params>(m, "_SimParams")
      .def(py::init(&params_from))
      .def("interpolate_memory", [](const sim::Params& p, double bytes) { return sim::interpolate(p.mem_eff, bytes); })
      .def("interpolate_matrix", [](const sim::Params& p, double flops) { return sim::interpolate(p.matrix_eff, flops); })
      .def("memory_ns", &sim::memory_ns)
      .def("kernel", [](const sim::Params& p, double flops, double bytes, double compute, double memory, double link) {
        return full_cost(sim::kernel(p, flops, bytes, compute, memory, link));
      })
      .def("generic", [](const sim::Params& p, double flops, double bytes, bool fp64) {
        return full_cost(sim::generic_cost(p, flops, bytes, fp64));
      })
      .def("link", [](const sim::Params& p, double bytes, double bw) { return full_cost(sim::link_cost(p, bytes, bw)); })
      .def("die_link_ns", &sim::die_link_ns)
      .def("peer_route", &sim::peer_route)
      .def("peer_copy", [](const sim::Params& p, double bytes, int src, int dst) {
        return full_cost(sim::peer_copy_cost(p, bytes, src, dst));
      });
  // kernel: the configuration a modelled kernel chose (a GEMM's block and split): the timeline's
  // record is named "op [kernel]", as a profiler names the device kernel; op counts keep the op.
  m.def(
      "_sim_charge",
      [](int device, const std::string& name, const std::string& kind, double flops, double bytes, double ns,
         const std::string& bound, const std::string& kernel) {
        auto k = parse_kind(kind);
        sim::charge(current_stream(device), kernel.empty() ? name : name + " [" + kernel + "]", k,
                    sim::Cost{flops, bytes, ns, parse_bound(bound)});
        record_op(name, k);
      },
      py::arg("device"), py::arg("name"), py::arg("kind"), py::arg("flops"), py::arg("bytes"), py::arg("ns"),
      py::arg("bound"), py::arg("kernel") = "");
  // Clocks are integer picoseconds; the _ns readers convert once (subtract _ps values for exact differences).
  m.def("_sim_elapsed_ns", [](int d) { return sim::to_ns(sim::elapsed(d)); });
  m.def("_sim_elapsed_ps", [](int d) { return sim::elapsed(d); });
  m.def("_sim_stream_clock", [](int d, int64_t s) { return sim::to_ns(sim::stream_clock(stream_of(d, s))); });
  m.def("_sim_synchronize", [](int d) {
    check_device_index(d);
    sim::host_wait_device(d, "synchronize()");
  });
  m.def("_sim_reset", [](int d) { sim::reset(d); }, py::arg("device") = -1);
  // Recording of the timeline's records, shared with torch.profiler's activity profiler.
  py::class_<sim::Mark>(m, "_SimRecordingMark");
  m.def("_sim_begin_recording", &sim::begin_recording);
  m.def("_sim_end_recording", [](const sim::Mark& mark) {
    auto rec = sim::end_recording(mark);
    py::list records, ranges;
    for (auto& r : rec.records)
      records.append(py::make_tuple(r.name, sim::kind_name(r.kind), (int)r.device, r.stream, sim::to_ns(r.start),
                                    sim::to_ns(r.dur), r.flops, r.bytes, sim::bound_name(r.bound)));
    for (auto& r : rec.ranges)
      ranges.append(py::make_tuple(r.name, (int)r.device, sim::to_ns(r.start), sim::to_ns(r.end)));
    return py::make_tuple(records, ranges);
  });

  // Graphs (torch_biren/biren/graphs.py)
  m.def("_sim_capture_begin", [](int d, int64_t s) { sim::capture_begin(stream_of(d, s)); });
  m.def("_sim_capture_end", [](int d) { return sim::capture_end(d); });
  m.def("_sim_capture_abort", [](int d) { sim::capture_abort(d); });
  m.def("_sim_capturing", [](int d) { return sim::capturing(d); });
  m.def("_sim_graph_launch", [](int d, int64_t s, int64_t g) { sim::graph_launch(stream_of(d, s), g); });
  m.def("_sim_graph_size", &sim::graph_size);
  m.def("_sim_graph_free", &sim::graph_free);
  m.def("_sim_set_muted", &sim::set_muted);
  m.def("_sim_set_compiling", &sim::set_compiling);

  m.def("_uncharged_ops", [] { return uncharged_ops(); });
  // Fallback policy, op statistics, modelled ops
  m.def("_set_fallback_policy", [](const std::string& p) {
    TORCH_CHECK(p == "allow" || p == "warn" || p == "error", "fallback policy must be allow, warn or error, got '", p, "'");
    set_fallback_policy(p == "allow" ? FallbackPolicy::Allow : p == "warn" ? FallbackPolicy::Warn : FallbackPolicy::Error);
  });
  m.def("_fallback_policy", [] {
    auto p = fallback_policy();
    return std::string(p == FallbackPolicy::Allow ? "allow" : p == FallbackPolicy::Warn ? "warn" : "error");
  });
  m.def("_register_direct_fallbacks", &register_direct_fallbacks);
  m.def("_op_counts", &op_counts, py::arg("compile_time") = false);
  m.def("_reset_op_counts", &reset_op_counts);
  m.def("_set_modelled_ops", &set_modelled_ops);
  m.def("_clear_cost_memo", &clear_cost_memo);
  m.def("_set_cost_fn", [](py::object fn) {
    // Deliberately leaked: the hook lives as long as the process, and a destructor running after
    // the interpreter has finalised could not take the GIL.
    auto holder = std::shared_ptr<py::object>(new py::object(std::move(fn)), [](py::object*) {});
    set_cost_fn([holder](const std::string& op, const std::vector<c10::IValue>& args) {
      py::gil_scoped_acquire g;
      py::list pyargs;
      for (const auto& a : args) pyargs.append(torch::jit::toPyObject(a));
      auto r = (*holder)(op, pyargs).cast<std::tuple<double, double, double, std::string>>();
      return sim::Cost{std::get<0>(r), std::get<1>(r), std::get<2>(r), parse_bound(std::get<3>(r))};
    });
  });
}
