#pragma once
// The boxed fallback: any op without a device kernel runs its CPU kernel on zero-copy views of
// device memory and is charged by the device model. Also the op statistics and fallback policy.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "../sim/timeline.h"

namespace biren {

enum class FallbackPolicy { Allow, Warn, Error };
void set_fallback_policy(FallbackPolicy p);
FallbackPolicy fallback_policy();

// Ops whose cost comes from the device model's formula for their family (a Python function,
// memoised per shape), so they count as modelled native kernels rather than fallback.
using CostFn = std::function<sim::Cost(const std::string& op, const std::vector<c10::IValue>& args)>;
void set_cost_fn(CostFn fn);
void set_modelled_ops(const std::vector<std::string>& names);
void clear_cost_memo();
// The registered formula's cost of op `name` for `args` (schema order), memoised like the fallback's.
sim::Cost formula_cost(const std::string& name, const std::vector<c10::IValue>& args);

// Counts per op name and kind; the Python layer adds its Triton ops through record_op. Work issued
// while torch.compile compiles (sim::compiling) is counted apart: op_counts(true).
void record_op(const std::string& name, sim::Kind kind);
std::map<std::string, std::map<std::string, int64_t>> op_counts(bool compile_time = false);
void reset_op_counts();

// Run `cpu_op` with the stack's biren tensors replaced by CPU views, results brought back to biren.
void run_on_cpu(const c10::OperatorHandle& op, torch::jit::Stack* stack, const c10::OperatorHandle& cpu_op);
void cpu_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack);
// Registers the fallback directly for structured ops (see the .cpp); returns how many.
int register_direct_fallbacks(const std::vector<std::string>& except);
// Kernels of csrc/aten/minimal.cpp that charge nothing.
const std::vector<std::string>& uncharged_ops();

}  // namespace biren
