#include "common/http/wire.h"

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "boost/beast/http/status.hpp"

namespace tessera::http::wire {
namespace {

namespace bhttp = boost::beast::http;

bool IsOwnedByServer(std::string_view name) {
  for (std::string_view owned : {"content-length", "transfer-encoding", "connection", "date"}) {
    if (absl::EqualsIgnoreCase(absl::string_view(name.data(), name.size()),
                               absl::string_view(owned.data(), owned.size()))) {
      return true;
    }
  }
  return false;
}

// Appends `text` with CR, LF and NUL replaced by spaces, so a caller's header cannot split the
// response.
void AppendSafe(std::string* out, std::string_view text) {
  for (char c : text) out->push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
}

// "Tue, 15 Nov 1994 08:12:31 GMT", formatted at most once a second per thread.
const std::string& DateValue() {
  thread_local int64_t second = -1;
  thread_local std::string text;
  const absl::Time now = absl::Now();
  const int64_t s = absl::ToUnixSeconds(now);
  if (s != second) {
    second = s;
    text = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", now, absl::UTCTimeZone());
  }
  return text;
}

}  // namespace

int SanitizeStatus(int status) { return status >= 200 && status <= 999 ? status : 500; }

bool StatusHasNoBody(int status) { return status == 204 || status == 304; }

std::string ResponseHead(const HeadSpec& spec) {
  std::string out;
  out.reserve(256);
  const int status = SanitizeStatus(spec.status);
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  absl::StrAppend(&out, "HTTP/1.1 ", status, " ");
  if (reason.empty() || reason.front() == '<') {
    out += "Unknown";
  } else {
    out.append(reason.data(), reason.size());
  }
  out += "\r\n";
  if (spec.headers != nullptr) {
    for (const Header& h : *spec.headers) {
      if (h.name.empty() || IsOwnedByServer(h.name)) continue;
      AppendSafe(&out, h.name);
      out += ": ";
      AppendSafe(&out, h.value);
      out += "\r\n";
    }
  }
  absl::StrAppend(&out, "date: ", DateValue(), "\r\n");
  switch (spec.framing) {
    case Framing::kLength:
      absl::StrAppend(&out, "content-length: ", spec.content_length, "\r\n");
      break;
    case Framing::kChunked:
      out += "transfer-encoding: chunked\r\n";
      break;
    case Framing::kUntilClose:
    case Framing::kNoBody:
      break;
  }
  if (spec.close) {
    out += "connection: close\r\n";
  } else if (spec.http10_keep_alive) {
    out += "connection: keep-alive\r\n";
  }
  out += "\r\n";
  return out;
}

std::string ChunkPrefix(size_t size) { return absl::StrFormat("%x\r\n", size); }

Response DefaultErrorResponse(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.headers.push_back({"content-type", "text/plain; charset=utf-8"});
  r.body = absl::StrCat(absl::string_view(message.data(), message.size()), "\n");
  return r;
}

}  // namespace tessera::http::wire
