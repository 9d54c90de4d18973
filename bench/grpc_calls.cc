#include "bench/grpc_calls.h"

#include <arpa/inet.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api/cluster_channel.h"
#include "tessera/v1/llm.grpc.pb.h"

namespace tessera::bench {
namespace {

// One streaming Generate call, on gRPC's callback API. Deletes itself when
// done, after handing its record to the sink.
class Call final : public grpc::ClientReadReactor<v1::GenerateResponse> {
 public:
  Call(CallSink* sink, Planned plan, Clock::time_point scheduled, const Options& o)
      : sink_(sink),
        plan_(std::move(plan)),
        keep_tokens_(o.workload == Workload::kMultiTurn || !o.record.empty() || !o.replay.empty()),
        disconnect_after_(o.disconnect_after_tokens) {
    record_.scheduled = scheduled;
    request_.set_request_id(plan_.request_id);
    for (int32_t t : plan_.prompt) request_.mutable_token_ids()->add_ids(t);
    auto* sampling = request_.mutable_sampling();
    sampling->set_max_tokens(plan_.max_tokens);
    sampling->set_temperature(plan_.temperature);
    if (plan_.temperature > 0) sampling->set_seed(plan_.seed);
    sampling->set_ignore_eos(true);
  }

  void Start(v1::Worker::Stub* worker, v1::Llm::Stub* llm, const Options& o) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(o.timeout_s));
    if (!o.api_key.empty()) ctx_.AddMetadata("authorization", "Bearer " + o.api_key);
    if (worker != nullptr) {
      worker->async()->Generate(&ctx_, &request_, this);
    } else {
      llm->async()->Generate(&ctx_, &request_, this);
    }
    StartRead(&msg_);
    record_.sent = Clock::now();
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended; OnDone follows
    const auto now = Clock::now();
    const int n = msg_.token_ids_size();
    if (n > 0) {
      if (record_.output_tokens == 0) {
        record_.first_token = now;
      } else {
        const double gap = Ms(now - record_.last_token) / n;
        for (int i = 0; i < n; ++i) record_.itl_ms.push_back(gap);
      }
      record_.last_token = now;
      record_.output_tokens += n;
      ++chunks_;
      if (keep_tokens_)
        output_.insert(output_.end(), msg_.token_ids().begin(), msg_.token_ids().end());
    }
    if (msg_.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      finished_ = true;
      finish_reason_ = msg_.finish_reason();
      record_.prompt_tokens = msg_.usage().prompt_tokens();
      record_.cached_prompt_tokens = msg_.usage().cached_prompt_tokens();
      if (msg_.has_timings() && msg_.timings().time_to_first_token_us() > 0) {
        record_.server_ttft_ms = msg_.timings().time_to_first_token_us() / 1000.0;
      }
      if (msg_.finish_reason() == v1::FINISH_REASON_ERROR) record_.error = msg_.error_message();
    } else if (disconnect_after_ > 0 && chunks_ >= disconnect_after_ && !record_.disconnected) {
      record_.disconnected = true;
      ctx_.TryCancel();  // OnDone follows with CANCELLED
    }
    StartRead(&msg_);
  }

  void OnDone(const grpc::Status& status) override {
    record_.done = Clock::now();
    if (!status.ok() && !(record_.disconnected && !finished_)) {
      record_.failure =
          absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
      record_.error = status.error_message();
    } else if (status.ok() && !finished_) {
      record_.failure = "NO_FINISH";
      record_.error = "stream ended without a finish_reason";
    } else if (finish_reason_ == v1::FINISH_REASON_ABORT) {
      record_.failure = "FINISH_ABORT";
    } else if (finish_reason_ == v1::FINISH_REASON_ERROR) {
      record_.failure = "FINISH_ERROR";
    }
    if (finished_) record_.disconnected = false;  // it ended before the cancel took effect
    // The call (its context holds the channel) goes before the sink hears of
    // its end: once every call is reported, the driver lets the channels go,
    // and the last reference released on this gRPC thread would destroy the
    // completion queue the thread runs (a double free ASan found at exit).
    CallSink* const sink = sink_;
    Planned plan = std::move(plan_);
    CallRecord record = std::move(record_);
    std::vector<int32_t> output = std::move(output_);
    delete this;
    sink->Finished(plan, std::move(record), output);
  }

 private:
  CallSink* const sink_;
  Planned plan_;
  const bool keep_tokens_;
  const int disconnect_after_;
  v1::GenerateRequest request_;
  grpc::ClientContext ctx_;
  v1::GenerateResponse msg_;
  CallRecord record_;
  bool finished_ = false;  // a message carried a finish reason
  v1::FinishReason finish_reason_ = v1::FINISH_REASON_UNSPECIFIED;
  int chunks_ = 0;  // messages with output tokens
  std::vector<int32_t> output_;
};

class GrpcTransport final : public Transport {
 public:
  GrpcTransport(const Options& o, std::vector<std::shared_ptr<grpc::Channel>> channels) : o_(o) {
    for (auto& ch : channels) {
      if (o_.worker_service) {
        workers_.push_back(v1::Worker::NewStub(ch));
      } else {
        llms_.push_back(v1::Llm::NewStub(ch));
      }
    }
  }

  void Start(Planned plan, Clock::time_point scheduled, int64_t seq, CallSink* sink) override {
    auto* call = new Call(sink, std::move(plan), scheduled, o_);
    const size_t c = static_cast<size_t>(seq) % std::max(workers_.size(), llms_.size());
    call->Start(o_.worker_service ? workers_[c].get() : nullptr,
                o_.worker_service ? nullptr : llms_[c].get(), o_);
  }

 private:
  const Options& o_;
  std::vector<std::unique_ptr<v1::Worker::Stub>> workers_;
  std::vector<std::unique_ptr<v1::Llm::Stub>> llms_;
};

constexpr char kSeveralRoutersConfig[] = R"({
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "tessera.v1.Llm"}, {"service": "tessera.v1.Worker"}],
    "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                    "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
  }]})";

}  // namespace

absl::StatusOr<std::string> GrpcTarget(const std::string& target) {
  if (target.find(',') == std::string::npos) return target;
  // "A:P,B:Q" -> "ipv4:A:P,B:Q" (gRPC's static list of IPv4 addresses).
  for (absl::string_view address : absl::StrSplit(target, ',')) {
    const size_t colon = address.rfind(':');
    in_addr ip{};
    if (colon == absl::string_view::npos ||
        inet_pton(AF_INET, std::string(address.substr(0, colon)).c_str(), &ip) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--target: several addresses must each be IPV4:PORT, got '", address, "'"));
    }
  }
  return absl::StrCat("ipv4:", target);
}

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> MakeChannels(const Options& o) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  const absl::StatusOr<std::string> target = GrpcTarget(o.target);
  if (!target.ok()) return target.status();
  const bool several = *target != o.target;
  for (int i = 0; i < o.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    // Several routers: spread the calls over them, and retry a call that found
    // its router gone (UNAVAILABLE before any response) on another one.
    if (several) args.SetServiceConfigJSON(kSeveralRoutersConfig);
    // Distinct arguments give each channel its own connection.
    args.SetInt("tessera.bench.channel", i);
    // A worker's port needs the cluster credential; the router's Llm the API
    // key, over TLS when --tls-* are given (a router started with them serves
    // TLS on its client port; this process's certificate is presented).
    channels.push_back(
        o.worker_service
            ? api::CreateClusterChannel(*target, o.cluster, args)
            : grpc::CreateCustomChannel(*target,
                                        o.cluster.tls() ? api::ClusterChannelCredentials(o.cluster)
                                                        : grpc::InsecureChannelCredentials(),
                                        args));
    if (!channels.back()->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(30))) {
      return absl::UnavailableError("cannot connect to " + o.target + " within 30 s");
    }
  }
  return channels;
}

std::unique_ptr<Transport> MakeGrpcTransport(const Options& o,
                                             std::vector<std::shared_ptr<grpc::Channel>> channels) {
  return std::make_unique<GrpcTransport>(o, std::move(channels));
}

// ---------------------------------------------------------------- prefix counters

PrefixCounterSource::PrefixCounterSource(const Options& o,
                                         std::shared_ptr<grpc::Channel> target_channel)
    : o_(o) {
  if (!o.admin.empty()) {
    admin_ = v1::Admin::NewStub(grpc::CreateChannel(o.admin, grpc::InsecureChannelCredentials()));
    name_ = "router " + o.admin;
  } else if (target_channel != nullptr) {
    // The target may be a worker (Worker.GetLoad) or not (a router answers
    // UNIMPLEMENTED: then there are no server counters).
    worker_ = v1::Worker::NewStub(std::move(target_channel));
    name_ = "worker " + o.target;
  }
}

std::optional<PrefixCounters> PrefixCounterSource::Read() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Status status;
  PrefixCounters c;
  if (admin_ != nullptr) {
    if (!o_.admin_token.empty()) ctx.AddMetadata("authorization", "Bearer " + o_.admin_token);
    v1::ClusterStatus s;
    status = admin_->GetClusterStatus(&ctx, v1::GetClusterStatusRequest(), &s);
    c = {s.prefix_cache_queried_tokens(), s.prefix_cache_hit_tokens()};
  } else if (worker_ != nullptr) {
    v1::LoadReport r;
    status = worker_->GetLoad(&ctx, v1::GetLoadRequest(), &r);
    c = {r.prefix_cache_queried_tokens(), r.prefix_cache_hit_tokens()};
  } else {
    return std::nullopt;
  }
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED && worker_ != nullptr) {
    worker_.reset();  // not a worker
    return std::nullopt;
  }
  if (!status.ok()) {
    std::fprintf(
        stderr, "tessera-bench: reading prefix-cache counters from %s failed: %s: %s\n",
        name_.c_str(),
        absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())).c_str(),
        status.error_message().c_str());
    return std::nullopt;
  }
  return c;
}

std::optional<PrefixCounters> PrefixCounterSource::ReadSettled() {
  std::optional<PrefixCounters> last = Read();
  if (admin_ == nullptr) return last;
  for (int i = 0; i < 8 && last.has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    std::optional<PrefixCounters> now = Read();
    if (!now.has_value() || *now == *last) return now;
    last = now;
  }
  return last;
}

}  // namespace tessera::bench
