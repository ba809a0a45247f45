#include "fallback.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "../runtime/allocator.h"
#include "../runtime/device.h"
#include "../runtime/generator.h"
#include "../runtime/op_memory.h"
#include "../runtime/stream.h"
#include "cpu_views.h"

namespace biren {
namespace {

constexpr int kKinds = 5;

struct OpInfo {
  std::string name;
  bool modelled = false;
  bool warned = false;
  bool cpu_args_allowed = false;  // ops CUDA also lets take CPU index tensors
  bool implicit_rng = false;      // draws random numbers without a Generator argument
  std::atomic<int64_t> counts[kKinds] = {};
  std::atomic<int64_t> compile_counts[kKinds] = {};  // issued while torch.compile compiled (sim::compiling)
  std::vector<size_t> generator_args;
  std::vector<size_t> mutable_args;
  std::vector<int> return_alias;  // per return: index of the mutable argument it returns, or -1
};

std::mutex mu;
std::unordered_map<const void*, OpInfo> infos;  // keyed by the op's schema, stable for its life
std::unordered_map<std::string, OpInfo*> by_name;
std::unordered_set<std::string> modelled_names;
CostFn cost_fn;

struct KeyHash {
  size_t operator()(const std::vector<int64_t>& v) const {
    size_t h = 1469598103934665603ull;
    for (auto x : v) h = (h ^ static_cast<size_t>(x)) * 1099511628211ull;
    return h;
  }
};
std::unordered_map<std::vector<int64_t>, sim::Cost, KeyHash> cost_memo;

FallbackPolicy read_policy() {
  const char* e = std::getenv("TORCH_BIREN_FALLBACK");
  if (e == nullptr || std::strcmp(e, "allow") == 0 || *e == 0) return FallbackPolicy::Allow;
  if (std::strcmp(e, "warn") == 0) return FallbackPolicy::Warn;
  if (std::strcmp(e, "error") == 0) return FallbackPolicy::Error;
  TORCH_WARN("TORCH_BIREN_FALLBACK must be allow, warn or error; got '", e, "', using allow");
  return FallbackPolicy::Allow;
}
FallbackPolicy policy = read_policy();

bool is_generator_type(const c10::TypePtr& t) {
  if (t->kind() == c10::GeneratorType::Kind) return true;
  if (auto o = t->cast<c10::OptionalType>()) return o->getElementType()->kind() == c10::GeneratorType::Kind;
  return false;
}

OpInfo& info_for_locked(const c10::OperatorHandle& op);

// Per-thread memo of schema -> info, so the hot path takes no lock.
OpInfo& info_for(const c10::OperatorHandle& op) {
  const c10::FunctionSchema& schema = op.schema();
  thread_local std::unordered_map<const void*, OpInfo*> seen;
  auto it = seen.find(&schema);
  if (it != seen.end()) return *it->second;
  OpInfo& info = info_for_locked(op);
  seen.emplace(&schema, &info);
  return info;
}

OpInfo& info_for_locked(const c10::OperatorHandle& op) {
  const c10::FunctionSchema& schema = op.schema();
  std::lock_guard<std::mutex> g(mu);
  auto it = infos.find(&schema);
  if (it != infos.end()) return it->second;
  OpInfo& info = infos[&schema];
  info.name = schema.name();
  if (!schema.overload_name().empty()) info.name += "." + schema.overload_name();
  info.modelled = modelled_names.count(info.name) > 0;
  static const std::unordered_set<std::string> cpu_ok = {"aten::index.Tensor", "aten::index.Tensor_out", "aten::index_put_",
                                                         "aten::index_put", "aten::_index_put_impl_"};
  info.cpu_args_allowed = cpu_ok.count(info.name) > 0;
  const auto& args = schema.arguments();
  for (size_t i = 0; i < args.size(); ++i) {
    if (is_generator_type(args[i].type())) info.generator_args.push_back(i);
    if (args[i].alias_info() && args[i].alias_info()->isWrite()) info.mutable_args.push_back(i);
  }
  for (const auto& r : schema.returns()) {
    int match = -1;
    if (r.alias_info() && r.alias_info()->isWrite())
      for (size_t i : info.mutable_args)
        if (args[i].alias_info()->beforeSets() == r.alias_info()->beforeSets()) match = static_cast<int>(i);
    info.return_alias.push_back(match);
  }
  // Its CPU kernel would draw from the CPU's default generator, not the device's.
  info.implicit_rng = op.hasTag(at::Tag::nondeterministic_seeded) && info.generator_args.empty();
  by_name[info.name] = &info;
  return info;
}

// Per-op bookkeeping of the biren storages seen among the arguments.
struct Bridge {
  struct Entry {
    c10::Storage biren;
    c10::Storage cpu;
    const void* data;
  };
  std::vector<Entry> entries;
  std::vector<const c10::StorageImpl*> cpu_inputs;
  c10::DeviceIndex device = -1;
  double in_bytes = 0, max_numel = 0;
  bool fp64 = false;

  const c10::Storage& cpu_for(const c10::Storage& st) {
    for (auto& e : entries)
      if (e.biren.unsafeGetStorageImpl() == st.unsafeGetStorageImpl()) return e.cpu;
    entries.push_back({st, cpu_storage_for(st), st.data()});
    return entries.back().cpu;
  }

  [[noreturn]] void mismatch(const OpInfo& info, const std::string& other, const std::string& arg) {
    TORCH_CHECK(false, "Expected all tensors to be on the same device, but found at least two devices, biren:",
                int(device), " and ", other, "! (when checking argument '", arg, "' of ", info.name, ")");
  }

  at::Tensor to_cpu(const at::Tensor& t, const OpInfo& info, const std::string& arg) {
    if (!t.defined()) return t;
    if (t.device().type() == c10::DeviceType::PrivateUse1) {
      auto d = t.device().index();
      if (device < 0) device = d;
      else if (device != d) mismatch(info, "biren:" + std::to_string(d), arg);
      double n = static_cast<double>(t.numel());
      in_bytes += n * t.element_size();
      max_numel = std::max(max_numel, n);
      fp64 |= t.scalar_type() == at::kDouble;
      if (t._is_zerotensor()) return at::zeros(t.sizes(), t.options().device(c10::kCPU));
      return cpu_view(t, cpu_for(t.storage()));
    }
    if (t.device().is_cpu()) {
      if (t.dim() > 0 && !info.cpu_args_allowed) pending_cpu_arg = arg;
      if (t.has_storage()) cpu_inputs.push_back(t.storage().unsafeGetStorageImpl());
      return t;
    }
    TORCH_CHECK(false, "biren: ", info.name, " got argument '", arg, "' on ", t.device(),
                ", which cannot be mixed with biren tensors");
  }

  c10::IValue convert(const c10::IValue& v, const OpInfo& info, const std::string& arg) {
    if (v.isTensor()) return to_cpu(v.toTensor(), info, arg);
    if (v.isTensorList()) {
      c10::List<at::Tensor> out;
      for (const at::Tensor& t : v.toTensorList()) out.push_back(to_cpu(t, info, arg));
      return out;
    }
    if (v.isList()) {
      auto l = v.toList();
      bool has_tensor = false;
      for (const c10::IValue& e : l) has_tensor |= e.isTensor();
      if (!has_tensor) return v;
      auto out = c10::impl::GenericList(l.elementType());
      for (const c10::IValue& e : l) out.push_back(convert(e, info, arg));
      return out;
    }
    if (v.isDevice() && v.toDevice().type() == c10::DeviceType::PrivateUse1) {
      auto d = v.toDevice().index();
      if (d >= 0) {
        check_device_index(d);
        if (device < 0) device = d;
      }
      return c10::Device(c10::DeviceType::CPU);
    }
    return v;
  }

  // Brings a CPU result back to the device: a view of an argument stays a view, new memory is adopted.
  at::Tensor to_biren(const at::Tensor& r, const OpInfo& info) {
    if (!r.defined() || !r.device().is_cpu()) return r;
    TORCH_CHECK_NOT_IMPLEMENTED(r.layout() == c10::kStrided, "biren supports only strided (dense) tensors; ",
                                info.name, " produced a ", r.layout(), " tensor");
    if (r._is_zerotensor()) return at::zeros(r.sizes(), r.options().device(c10::Device(c10::DeviceType::PrivateUse1, device)));
    auto* impl = r.has_storage() ? r.storage().unsafeGetStorageImpl() : nullptr;
    for (auto& e : entries)
      if (e.cpu.unsafeGetStorageImpl() == impl) return biren_alias(e.biren, r);
    if (std::find(cpu_inputs.begin(), cpu_inputs.end(), impl) != cpu_inputs.end()) return adopt_result(r.clone(), device);
    return adopt_result(r, device);
  }

  c10::IValue back(const c10::IValue& v, const OpInfo& info) {
    if (v.isTensor()) return to_biren(v.toTensor(), info);
    if (v.isTensorList()) {
      c10::List<at::Tensor> out;
      for (const at::Tensor& t : v.toTensorList()) out.push_back(to_biren(t, info));
      return out;
    }
    return v;
  }

  // A CPU kernel that grew an out= argument allocated CPU memory for it: move it into the device.
  void sync_storages() {
    for (auto& e : entries) {
      if (e.cpu.data() == e.data) continue;
      auto* impl = e.biren.unsafeGetStorageImpl();
      impl->set_data_ptr_noswap(device_memory().adopt(e.cpu, device));
      impl->set_nbytes(e.cpu.nbytes());
    }
  }

  std::string pending_cpu_arg;
};

double result_bytes(const c10::IValue& v, double& max_numel, bool& fp64) {
  auto one = [&](const at::Tensor& t) {
    if (!t.defined()) return 0.0;
    double n = static_cast<double>(t.numel());
    max_numel = std::max(max_numel, n);
    fp64 |= t.scalar_type() == at::kDouble;
    return n * t.element_size();
  };
  if (v.isTensor()) return one(v.toTensor());
  double b = 0;
  if (v.isTensorList())
    for (const at::Tensor& t : v.toTensorList()) b += one(t);
  return b;
}

void push_key(std::vector<int64_t>& key, const c10::IValue& v) {
  if (v.isTensor()) {
    const auto& t = v.toTensor();
    key.push_back(t.defined() ? static_cast<int64_t>(t.scalar_type()) : -1);
    key.push_back(t.defined() ? t.dim() : -1);
    if (t.defined()) key.insert(key.end(), t.sizes().begin(), t.sizes().end());
  } else if (v.isInt()) {
    key.push_back(v.toInt());
  } else if (v.isBool()) {
    key.push_back(v.toBool());
  } else if (v.isIntList()) {
    for (auto x : v.toIntVector()) key.push_back(x);
  } else if (v.isTensorList()) {
    for (const at::Tensor& t : v.toTensorList()) push_key(key, t);
  } else {
    key.push_back(-7);
  }
}

// The memo keys on everything the formula reads: the op, its arguments' shapes, dtypes and scalars,
// and the float32 matmul precision (fp32 GEMMs are charged as TF32 unless it is "highest").
sim::Cost memo_cost(std::vector<int64_t> key, const std::string& name,
                    c10::ArrayRef<c10::IValue> args) {
  key.push_back(static_cast<int64_t>(at::globalContext().float32MatmulPrecision()));
  {
    std::lock_guard<std::mutex> g(mu);
    auto it = cost_memo.find(key);
    if (it != cost_memo.end()) return it->second;
  }
  TORCH_INTERNAL_ASSERT(cost_fn, "biren: modelled op ", name, " has no cost function");
  sim::Cost c = cost_fn(name, args.vec());
  std::lock_guard<std::mutex> g(mu);
  cost_memo.emplace(std::move(key), c);
  return c;
}

sim::Cost modelled_cost(const OpInfo& info, const torch::jit::Stack& stack, size_t begin) {
  std::vector<int64_t> key{reinterpret_cast<int64_t>(&info)};
  for (size_t i = begin; i < stack.size(); ++i) push_key(key, stack[i]);
  return memo_cost(std::move(key), info.name, c10::ArrayRef<c10::IValue>(stack).slice(begin));
}

void count(OpInfo& info, sim::Kind kind) {
  (sim::compiling() ? info.compile_counts : info.counts)[static_cast<int>(kind)]++;
}

}  // namespace

void set_fallback_policy(FallbackPolicy p) { policy = p; }
FallbackPolicy fallback_policy() { return policy; }

void set_cost_fn(CostFn fn) {
  std::lock_guard<std::mutex> g(mu);
  cost_fn = std::move(fn);
  cost_memo.clear();
}

void set_modelled_ops(const std::vector<std::string>& names) {
  std::lock_guard<std::mutex> g(mu);
  modelled_names = std::unordered_set<std::string>(names.begin(), names.end());
  for (auto& kv : infos) kv.second.modelled = modelled_names.count(kv.second.name) > 0;
}

sim::Cost formula_cost(const std::string& name, const std::vector<c10::IValue>& args) {
  std::vector<int64_t> key{static_cast<int64_t>(std::hash<std::string>{}(name))};
  for (const auto& a : args) push_key(key, a);
  return memo_cost(std::move(key), name, args);
}

void clear_cost_memo() {
  std::lock_guard<std::mutex> g(mu);
  cost_memo.clear();
}

void record_op(const std::string& name, sim::Kind kind) {
  std::lock_guard<std::mutex> g(mu);
  auto it = by_name.find(name);
  if (it == by_name.end()) {
    // Ops charged from Python or the copy paths have no schema entry here; key them by name.
    static std::unordered_map<std::string, OpInfo> extra;
    auto& info = extra[name];
    info.name = name;
    it = by_name.emplace(name, &info).first;
  }
  count(*it->second, kind);
}

std::map<std::string, std::map<std::string, int64_t>> op_counts(bool compile_time) {
  std::lock_guard<std::mutex> g(mu);
  std::map<std::string, std::map<std::string, int64_t>> out;
  for (auto& [name, info] : by_name) {
    auto& counts = compile_time ? info->compile_counts : info->counts;
    for (int k = 0; k < kKinds; ++k)
      if (counts[k]) out[name][sim::kind_name(static_cast<sim::Kind>(k))] = counts[k];
  }
  return out;
}

void reset_op_counts() {
  std::lock_guard<std::mutex> g(mu);
  for (auto& kv : by_name)
    for (auto* counts : {&kv.second->counts, &kv.second->compile_counts})
      for (auto& c : *counts) c = 0;
}

void run_on_cpu(const c10::OperatorHandle& op, torch::jit::Stack* stack, const c10::OperatorHandle& cpu_op) {
  const auto& schema = op.schema();
  OpInfo& info = info_for(op);
  if (!info.modelled && policy != FallbackPolicy::Allow && !sim::compiling()) {
    TORCH_CHECK_NOT_IMPLEMENTED(policy != FallbackPolicy::Error, "biren: ", info.name,
                                " has no device kernel, and TORCH_BIREN_FALLBACK=error forbids running it "
                                "through the CPU fallback.");
    if (!info.warned) {
      info.warned = true;
      TORCH_WARN("biren: ", info.name, " has no device kernel; it ran through the CPU fallback and is charged a "
                 "generic cost. torch_biren.fallback_ops() lists every such op.");
    }
  }
  const auto& args = schema.arguments();
  const size_t begin = stack->size() - args.size();
  Bridge bridge;
  struct Mutated {
    size_t arg;
    at::Tensor biren, cpu;
  };
  std::vector<Mutated> mutated;
  for (size_t i = 0; i < args.size(); ++i) {
    auto& v = (*stack)[begin + i];
    bool is_mutable = v.isTensor() && std::find(info.mutable_args.begin(), info.mutable_args.end(), i) !=
                                          info.mutable_args.end();
    at::Tensor orig = is_mutable ? v.toTensor() : at::Tensor();
    v = bridge.convert(v, info, args[i].name());
    if (is_mutable) mutated.push_back({i, orig, v.toTensor()});
  }
  if (bridge.device < 0) bridge.device = current_device();
  if (!bridge.pending_cpu_arg.empty() && !bridge.entries.empty()) bridge.mismatch(info, "cpu", bridge.pending_cpu_arg);
  for (size_t i : info.generator_args) {
    auto& v = (*stack)[begin + i];
    std::optional<at::Generator> g;
    if (v.isGenerator()) g = v.toGenerator();
    v = cpu_generator_for(g, bridge.device);
  }
  sim::Cost cost;
  if (info.modelled) cost = modelled_cost(info, *stack, begin);
  try {
    OpMemoryScope on_card(bridge.device);  // its output and workspace must fit the card
    // The op was recorded (profilers) when it reached biren; its CPU kernel is not a second op.
    at::DisableRecordFunctionGuard not_a_second_op;
    std::optional<DeviceStreamAsCpuDefault> rng;
    if (info.implicit_rng) rng.emplace(bridge.device);
    cpu_op.callBoxed(stack);
  } catch (const c10::NotImplementedError&) {
    // An op PyTorch implements only for other accelerators (e.g. CUDA-only kernels) has nothing to fall
    // back on: say so, rather than let the dispatcher blame the 'CPU' backend of a biren call. Checked
    // here, off the hot path.
    TORCH_CHECK_NOT_IMPLEMENTED(cpu_op.hasComputedKernelForDispatchKey(c10::DispatchKey::CPU), "biren: ", info.name,
                                " is not supported on biren: it has no device kernel, and PyTorch has no CPU kernel "
                                "for the fallback to run (it is implemented only for other accelerators).");
    throw;
  }
  bridge.sync_storages();
  for (auto& m : mutated) {
    // Keep metadata changes the CPU kernel made to in-place / out= arguments (e.g. resized outputs).
    if (!m.biren.defined() || m.biren.device().is_cpu()) continue;
    if (m.cpu.sizes() != m.biren.sizes() || m.cpu.strides() != m.biren.strides() ||
        m.cpu.storage_offset() != m.biren.storage_offset())
      m.biren.unsafeGetTensorImpl()->set_sizes_and_strides(m.cpu.sizes(), m.cpu.strides(), m.cpu.storage_offset());
  }
  const size_t nret = schema.returns().size();
  const size_t rbegin = stack->size() - nret;
  double out_bytes = 0, max_numel = bridge.max_numel;
  bool fp64 = bridge.fp64;
  for (size_t j = 0; j < nret; ++j) {
    auto& v = (*stack)[rbegin + j];
    int a = info.return_alias[j];
    if (a >= 0) {
      for (auto& m : mutated)
        if (static_cast<int>(m.arg) == a) v = m.biren;
    } else {
      v = bridge.back(v, info);
    }
    out_bytes += result_bytes(v, max_numel, fp64);
  }
  if (!info.modelled) cost = sim::generic_cost(max_numel, bridge.in_bytes + out_bytes, fp64);
  auto kind = info.modelled ? sim::Kind::Native : sim::Kind::Fallback;
  sim::charge(current_stream(bridge.device), info.name, kind, cost);
  count(info, kind);
}

void cpu_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) { run_on_cpu(op, stack, op); }

int register_direct_fallbacks(const std::vector<std::string>& except) {
  // Structured ops reach a backend through a generic composite (meta function, allocation, then the
  // out= kernel): for a fallback that runs CPU kernels that means shape inference twice. Sending the
  // functional and in-place forms straight to the CPU kernel halves the overhead of tiny ops. Ops
  // with a math composite beside their CPU kernel (layer_norm, group_norm, addr) go to the CPU kernel
  // too, so biren's numerics are the CPU's rather than the decomposition's. The _foreach_ ops have no
  // CPU kernel, only a composite that loops over the tensors: sent here, they run that loop on the CPU
  // views and are charged once per op by their formula (sim/registry.py, multi-tensor-apply launches),
  // not once per tensor.
  static torch::Library* lib = nullptr;  // leaked: must outlive the dispatcher's static teardown
  if (lib) return 0;
  lib = new torch::Library(torch::Library::IMPL, "aten", c10::DispatchKey::PrivateUse1, __FILE__, __LINE__);
  auto& d = c10::Dispatcher::singleton();
  int n = 0;
  for (const auto& name : d.getAllOpNames()) {
    if (name.name.rfind("aten::", 0) != 0) continue;
    auto op = d.findOp(name);
    const bool foreach = name.name.rfind("aten::_foreach_", 0) == 0;
    if (!op || !(foreach || op->hasKernelForDispatchKey(c10::DispatchKey::CPU)) ||
        op->hasKernelForDispatchKey(c10::DispatchKey::PrivateUse1) ||
        !(op->hasKernelForDispatchKey(c10::DispatchKey::CompositeExplicitAutogradNonFunctional) ||
          op->hasKernelForDispatchKey(c10::DispatchKey::CompositeExplicitAutograd)))
      continue;
    std::string full = name.overload_name.empty() ? name.name.substr(6) : name.name.substr(6) + "." + name.overload_name;
    if (std::find(except.begin(), except.end(), full) != except.end()) continue;
    lib->impl(full.c_str(), torch::CppFunction::makeFromBoxedFunction<&cpu_fallback>());
    ++n;
  }
  return n;
}

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) { m.fallback(torch::CppFunction::makeFromBoxedFunction<&cpu_fallback>()); }

}  // namespace biren
