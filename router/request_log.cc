#include "router/request_log.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api/grpc_status.h"
#include "nlohmann/json.hpp"
#include "tessera/v1/llm.pb.h"

namespace tessera::router {
namespace {

std::string Timestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// A text value: "-" when empty; quoted (C escapes) when it holds a space, a
// quote, '=' or a control character.
std::string TextValue(absl::string_view v) {
  if (v.empty()) return "-";
  for (const char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::StrCat("\"", absl::CEscape(v), "\"");
    }
  }
  return std::string(v);
}

std::string MsText(absl::Duration d) { return absl::StrFormat("%.1f", Ms(d)); }

}  // namespace

absl::StatusOr<RequestLogFormat> ParseRequestLogFormat(absl::string_view name) {
  if (name == "text") return RequestLogFormat::kText;
  if (name == "json") return RequestLogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log format '", name, "' (accepted: text, json)"));
}

std::string FormatRequestText(const RequestRecord& r) {
  std::string line = absl::StrCat(
      Timestamp(r.end_time), " request id=", TextValue(r.request_id),
      " client_id=", TextValue(r.client_request_id), " model=", TextValue(r.model),
      " front_end=", TextValue(r.front_end), " worker=", TextValue(r.worker),
      " attempts=", r.attempts, " continuations=", r.continuations,
      " status=", api::StatusCodeName(r.status), " finish=", TextValue(r.finish_reason),
      " prompt_tokens=", r.prompt_tokens, " completion_tokens=", r.completion_tokens,
      " cached_tokens=", r.cached_tokens, " queue_ms=", MsText(r.queue),
      " ttft_ms=", r.ttft.has_value() ? MsText(*r.ttft) : "-", " total_ms=", MsText(r.total));
  if (r.status != grpc::StatusCode::OK) absl::StrAppend(&line, " error=", TextValue(r.error));
  return line;
}

std::string FormatRequestJson(const RequestRecord& r) {
  auto or_null = [](const std::string& s) {
    return s.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(s);
  };
  nlohmann::ordered_json j;
  j["ts"] = Timestamp(r.end_time);
  j["request_id"] = r.request_id;
  j["client_request_id"] = or_null(r.client_request_id);
  j["model"] = r.model;
  j["front_end"] = r.front_end;
  j["worker"] = or_null(r.worker);
  j["attempts"] = r.attempts;
  j["continuations"] = r.continuations;
  j["status"] = api::StatusCodeName(r.status);
  j["finish_reason"] = or_null(r.finish_reason);
  j["prompt_tokens"] = r.prompt_tokens;
  j["completion_tokens"] = r.completion_tokens;
  j["cached_tokens"] = r.cached_tokens;
  j["queue_ms"] = Ms(r.queue);
  j["ttft_ms"] = r.ttft.has_value() ? nlohmann::ordered_json(Ms(*r.ttft)) : nullptr;
  j["total_ms"] = Ms(r.total);
  if (r.status != grpc::StatusCode::OK) j["error"] = r.error;
  // Invalid UTF-8 in an id must not throw: replace it.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void RequestLog::Write(const RequestRecord& record) {
  std::string line =
      format_ == RequestLogFormat::kJson ? FormatRequestJson(record) : FormatRequestText(record);
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

}  // namespace tessera::router
