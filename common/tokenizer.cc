#include "common/tokenizer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/tokenizer/unicode.h"

namespace tessera {
namespace {

constexpr int32_t kUnkId = 0;
constexpr int32_t kBosId = 1;
constexpr int32_t kEosId = 2;
constexpr int32_t kByteOffset = 3;        // byte b is id b + 3
constexpr int32_t kFirstNonByteId = 259;  // 3 + 256

class ByteTokenizer final : public Tokenizer {
 public:
  explicit ByteTokenizer(int32_t vocab_size) : vocab_size_(vocab_size) {}

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              bool add_special_tokens) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() + 1);
    if (add_special_tokens && bos_id()) ids.push_back(kBosId);
    for (unsigned char b : text) {
      const int32_t id = b + kByteOffset;
      if (id >= vocab_size_) {
        return absl::InvalidArgumentError(
            absl::StrCat("byte 0x", absl::Hex(b), " has no token in a byte vocabulary of ",
                         vocab_size_, " ids (needs ", kFirstNonByteId, ")"));
      }
      ids.push_back(id);
    }
    return ids;
  }

  absl::StatusOr<std::string> Decode(std::span<const int32_t> ids,
                                     bool skip_special) const override {
    std::string bytes;
    bytes.reserve(ids.size());
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size_) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size_, ")"));
      }
      if (id >= kFirstNonByteId) {
        absl::StrAppend(&bytes, "<tok_", id, ">");
      } else if (id >= kByteOffset) {
        bytes.push_back(static_cast<char>(id - kByteOffset));
      } else if (!skip_special) {
        bytes += id == kUnkId ? "<unk>" : id == kBosId ? "<s>" : "</s>";
      }
    }
    std::string text;
    hf::AppendLossyUtf8(bytes, &text);
    return text;
  }

  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override {
    return kBosId < vocab_size_ ? std::optional<int32_t>(kBosId) : std::nullopt;
  }
  std::vector<int32_t> eos_ids() const override {
    if (kEosId < vocab_size_) return {kEosId};
    return {};
  }
  bool IsSpecial(int32_t id) const override {
    return id >= 0 && id < kByteOffset && id < vocab_size_;
  }
  std::optional<int32_t> TokenToId(absl::string_view token) const override {
    const int32_t id = token == "<unk>"  ? kUnkId
                       : token == "<s>"  ? kBosId
                       : token == "</s>" ? kEosId
                                         : -1;
    if (id < 0 || id >= vocab_size_) return std::nullopt;
    return id;
  }

 private:
  int32_t vocab_size_;
};

bool EndsWithReplacement(absl::string_view s) { return absl::EndsWith(s, hf::kReplacementChar); }

// The part of `full` after `prefix`. When `full` does not start with `prefix`
// (only possible around invalid bytes), the text after their longest common
// prefix, cut at a character boundary so the result stays valid UTF-8.
std::string After(absl::string_view prefix, absl::string_view full) {
  if (absl::StartsWith(full, prefix)) return std::string(full.substr(prefix.size()));
  size_t common = 0;
  while (common < prefix.size() && common < full.size() && prefix[common] == full[common]) {
    ++common;
  }
  while (common > 0 && (static_cast<unsigned char>(full[common]) & 0xC0) == 0x80) --common;
  return std::string(full.substr(common));
}

}  // namespace

absl::StatusOr<std::string> IncrementalDecoder::Append(std::span<const int32_t> ids) {
  std::vector<int32_t> all = ids_;
  all.insert(all.end(), ids.begin(), ids.end());
  absl::StatusOr<std::string> full = tokenizer_->Decode(all, skip_special_);
  if (!full.ok()) return full.status();
  ids_ = std::move(all);
  // Text ending in U+FFFD may still change (an unfinished character): emit
  // what comes before it, but keep the offsets until the text is complete.
  absl::string_view body = *full;
  bool complete = true;
  while (EndsWithReplacement(body)) {
    body.remove_suffix(sizeof(hf::kReplacementChar) - 1);
    complete = false;
  }
  const size_t done = prefix_text_.size() + emitted_;
  if (body.size() <= done) return std::string();
  std::string out = absl::StartsWith(body, prefix_text_) ? std::string(body.substr(done))
                                                         : After(prefix_text_, body);
  if (!complete) {
    emitted_ += out.size();
    return out;
  }
  // prefix_offset <- read_offset, read_offset <- the end.
  ids_.erase(ids_.begin(), ids_.begin() + read_offset_);
  read_offset_ = ids_.size();
  emitted_ = 0;
  absl::StatusOr<std::string> prefix = tokenizer_->Decode(ids_, skip_special_);
  prefix_text_ = prefix.ok() ? *std::move(prefix) : std::string();
  return out;
}

std::string IncrementalDecoder::Flush() {
  std::string out;
  if (read_offset_ < ids_.size()) {
    absl::StatusOr<std::string> full = tokenizer_->Decode(ids_, skip_special_);
    const size_t done = prefix_text_.size() + emitted_;
    if (full.ok() && full->size() > done) {
      out = absl::StartsWith(*full, prefix_text_) ? full->substr(done) : After(prefix_text_, *full);
    }
  }
  ids_.clear();
  read_offset_ = 0;
  emitted_ = 0;
  prefix_text_.clear();
  return out;
}

std::unique_ptr<Tokenizer> MakeByteTokenizer(int32_t vocab_size) {
  return std::make_unique<ByteTokenizer>(vocab_size);
}

}  // namespace tessera
