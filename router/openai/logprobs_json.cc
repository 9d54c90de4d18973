#include "router/openai/logprobs_json.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <span>

#include "absl/strings/str_cat.h"

namespace tessera::router::openai::internal {
namespace {

using OrderedJson = nlohmann::ordered_json;
constexpr double kMinLogprob = -9999.0;  // vLLM's stand-in for -inf

}  // namespace

double LogprobValue(float logprob) {
  if (!(logprob >= kMinLogprob)) return kMinLogprob;  // NaN, -inf, very small
  if (!std::isfinite(logprob)) return 0.0;            // +inf cannot be a log probability
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf) - 1, logprob);
  if (ec != std::errc()) return logprob;
  *end = '\0';
  return std::strtod(buf, nullptr);
}

int64_t CodePoints(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

const std::string& LogprobsFormatter::TokenText(int32_t id) {
  auto [it, inserted] = cache_.try_emplace(id);
  if (inserted) {
    absl::StatusOr<std::string> text = tokenizer_ == nullptr
                                           ? absl::InvalidArgumentError("no tokenizer")
                                           : tokenizer_->Decode(std::span<const int32_t>(&id, 1),
                                                                /*skip_special=*/false);
    it->second = text.ok() ? *std::move(text) : absl::StrCat("token_id:", id);
  }
  return it->second;
}

OrderedJson LogprobsFormatter::Bytes(const std::string& text) const {
  OrderedJson bytes = OrderedJson::array();
  for (unsigned char c : text) bytes.push_back(static_cast<int>(c));
  return bytes;
}

// Token i of a message: the logprob entry when there is one.
namespace {
struct TokenAt {
  int32_t id;
  const v1::TokenLogprob* lp;  // null when the message has no logprob for it
};
std::vector<TokenAt> Tokens(const v1::GenerateResponse& m) {
  const size_t n = std::max<size_t>(m.token_ids_size(), m.logprobs_size());
  std::vector<TokenAt> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const v1::TokenLogprob* lp =
        i < static_cast<size_t>(m.logprobs_size()) ? &m.logprobs(i) : nullptr;
    out.push_back({lp != nullptr ? lp->token_id() : m.token_ids(i), lp});
  }
  return out;
}
}  // namespace

void LogprobsFormatter::AppendChat(const v1::GenerateResponse& message, OrderedJson& content) {
  for (const TokenAt& t : Tokens(message)) {
    const std::string& text = TokenText(t.id);
    OrderedJson entry;
    entry["token"] = text;
    entry["logprob"] = t.lp != nullptr ? LogprobValue(t.lp->logprob()) : kMinLogprob;
    entry["bytes"] = Bytes(text);
    OrderedJson top = OrderedJson::array();
    for (int k = 0; t.lp != nullptr && k < top_ && k < t.lp->top_size(); ++k) {
      const std::string& alt = TokenText(t.lp->top(k).token_id());
      top.push_back({{"token", alt},
                     {"logprob", LogprobValue(t.lp->top(k).logprob())},
                     {"bytes", Bytes(alt)}});
    }
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
}

void LogprobsFormatter::AppendCompletions(const v1::GenerateResponse& message, int64_t text_offset,
                                          OrderedJson& logprobs) {
  if (logprobs.is_null() || logprobs.empty()) {
    logprobs = {{"tokens", OrderedJson::array()},
                {"token_logprobs", OrderedJson::array()},
                {"top_logprobs", OrderedJson::array()},
                {"text_offset", OrderedJson::array()}};
  }
  int64_t offset = text_offset;
  for (const TokenAt& t : Tokens(message)) {
    const std::string& text = TokenText(t.id);
    logprobs["tokens"].push_back(text);
    logprobs["text_offset"].push_back(offset);
    offset += CodePoints(text);
    if (t.lp == nullptr) {
      logprobs["token_logprobs"].push_back(nullptr);
      logprobs["top_logprobs"].push_back(nullptr);
      continue;
    }
    logprobs["token_logprobs"].push_back(LogprobValue(t.lp->logprob()));
    // The chosen token first, then the top alternatives (vLLM's dict: a
    // token string already present is not repeated).
    OrderedJson top = OrderedJson::object();
    top[text] = LogprobValue(t.lp->logprob());
    for (int k = 0; k < top_ && k < t.lp->top_size(); ++k) {
      const std::string& alt = TokenText(t.lp->top(k).token_id());
      if (!top.contains(alt)) top[alt] = LogprobValue(t.lp->top(k).logprob());
    }
    logprobs["top_logprobs"].push_back(std::move(top));
  }
}

}  // namespace tessera::router::openai::internal
