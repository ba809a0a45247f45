// torch.profiler's view of the simulated device: a Kineto activity profiler registered through
// PyTorch's PrivateUse1 hook. While a profile is active it records what the timeline charges (the
// same records torch_biren.profiler reads) and hands them to Kineto as device activities, one track
// per device and stream, linked to the CPU op that issued them by Kineto's correlation ids.
#ifdef KINETO_PLUGIN
// Set here only (not for the whole build): torch was built with Kineto, and these headers need it.
#ifndef USE_KINETO
#define USE_KINETO 1
#endif
// GenericTraceActivity::addMetadata formats with fmt, whose compiled part libtorch does not export.
#define FMT_HEADER_ONLY 1

#include <torch/csrc/profiler/standalone/privateuse1_profiler.h>

#include <IActivityProfiler.h>
#include <libkineto.h>
#include <output_base.h>

#include <c10/util/ApproximateClock.h>

#include <cmath>
#include <set>

#include "../sim/timeline.h"

namespace biren::profiler {
namespace {

using libkineto::ActivityType;

class Session final : public libkineto::IActivityProfilerSession {
 public:
  void start() override {
    // Device tracks run on simulated time, anchored at the wall time recording began.
    wall_start_ns_ = c10::getTime();
    mark_ = sim::begin_recording();
    recording_ = true;
    status_ = libkineto::TraceStatus::RECORDING;
  }

  void stop() override {
    if (!recording_) return;
    recorded_ = sim::end_recording(mark_);
    recording_ = false;
    wall_end_ns_ = c10::getTime();
    status_ = libkineto::TraceStatus::PROCESSING;
  }

  ~Session() override { stop(); }

  std::vector<std::string> errors() override { return {}; }

  void processTrace(libkineto::ActivityLogger& logger) override { processTrace(logger, nullptr, 0, 0); }

  void processTrace(libkineto::ActivityLogger& logger, libkineto::getLinkedActivityCallback linked_of, int64_t,
                    int64_t) override {
    stop();
    buffer_ = std::make_unique<libkineto::CpuTraceBuffer>();
    buffer_->span = libkineto::TraceSpan(wall_start_ns_, wall_end_ns_, "biren (simulated)");
    for (const auto& r : recorded_.records) {
      sim::Tick origin = r.device < static_cast<c10::DeviceIndex>(mark_.device_now.size())
                             ? mark_.device_now[r.device] : 0;
      auto type = r.kind == sim::Kind::Copy ? ActivityType::GPU_MEMCPY : ActivityType::CONCURRENT_KERNEL;
      // Kernels are named "<kind>: <op>" so that key_averages() tells them from the CPU op that issued
      // them (as CUDA's kernel names differ from their ops'); copies keep CUDA's names (Memcpy HtoD).
      bool kernel = r.kind == sim::Kind::Triton || r.kind == sim::Kind::Native || r.kind == sim::Kind::Fallback;
      buffer_->emplace_activity(buffer_->span, type, kernel ? std::string(sim::kind_name(r.kind)) + ": " + r.name : r.name);
      auto& a = *buffer_->activities.back();
      // Ends are rounded, not durations, so that consecutive kernels tile the track without gaps.
      a.startTime = wall_start_ns_ + std::llround(sim::to_ns(r.start - origin));
      a.endTime = wall_start_ns_ + std::llround(sim::to_ns(r.start + r.dur - origin));
      a.device = r.device;
      a.resource = static_cast<int32_t>(r.stream);
      a.threadId = static_cast<int32_t>(r.stream);
      a.id = static_cast<int32_t>(r.correlation);
      a.linked = (linked_of && r.correlation) ? linked_of(static_cast<int32_t>(r.correlation)) : nullptr;
      a.addMetadata("device", static_cast<int>(r.device));
      a.addMetadata("stream", r.stream);
      a.addMetadata("correlation", r.correlation);
      a.addMetadataQuoted("kind", sim::kind_name(r.kind));
      a.addMetadataQuoted("bound", sim::bound_name(r.bound));
      a.addMetadata("flops", r.flops);
      a.addMetadata("bytes", r.bytes);
      a.addMetadata("simulated duration ns", sim::to_ns(r.dur));
      streams_.insert({r.device, r.stream});
      a.log(logger);
    }
  }

  std::unique_ptr<libkineto::DeviceInfo> getDeviceInfo() override {
    int64_t d = streams_.empty() ? 0 : streams_.begin()->first;
    return std::make_unique<libkineto::DeviceInfo>(d, d, "biren:" + std::to_string(d) + " (simulated)",
                                                   "biren " + std::to_string(d));
  }

  std::vector<libkineto::ResourceInfo> getResourceInfos() override {
    std::vector<libkineto::ResourceInfo> out;
    for (auto [d, s] : streams_) out.push_back({s, s, d, "stream " + std::to_string(s)});
    return out;
  }

  std::unique_ptr<libkineto::CpuTraceBuffer> getTraceBuffer() override { return std::move(buffer_); }

  void pushCorrelationId(uint64_t id) override { sim::push_correlation(id); }
  void popCorrelationId() override { sim::pop_correlation(); }

 private:
  int64_t wall_start_ns_ = 0, wall_end_ns_ = 0;
  bool recording_ = false;
  sim::Mark mark_;
  sim::Recording recorded_;
  std::set<std::pair<int64_t, int64_t>> streams_;
  std::unique_ptr<libkineto::CpuTraceBuffer> buffer_;
};

class BirenActivityProfiler final : public libkineto::IActivityProfiler {
 public:
  const std::string& name() const override { return name_; }
  const std::set<ActivityType>& availableActivities() const override { return activities_; }

  std::unique_ptr<libkineto::IActivityProfilerSession> configure(const std::set<ActivityType>& types,
                                                                 const libkineto::Config&) override {
    // Only when the user asked for device activities (ProfilerActivity.PrivateUse1).
    for (auto t : activities_)
      if (types.count(t)) return std::make_unique<Session>();
    return nullptr;
  }

  std::unique_ptr<libkineto::IActivityProfilerSession> configure(int64_t, int64_t,
                                                                 const std::set<ActivityType>& types,
                                                                 const libkineto::Config& config) override {
    return configure(types, config);
  }

 private:
  std::string name_ = "biren";
  std::set<ActivityType> activities_ = {ActivityType::CONCURRENT_KERNEL, ActivityType::GPU_MEMCPY};
};

REGISTER_PRIVATEUSE1_PROFILER(BirenActivityProfiler);

}  // namespace
}  // namespace biren::profiler

#endif  // KINETO_PLUGIN
