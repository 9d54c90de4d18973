#include "common/tokenizer.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tessera {
namespace {

constexpr int32_t kUnkId = 0;
constexpr int32_t kBosId = 1;
constexpr int32_t kEosId = 2;
constexpr int32_t kByteOffset = 3;        // byte b is id b + 3
constexpr int32_t kFirstNonByteId = 259;  // 3 + 256

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

class ByteTokenizer final : public Tokenizer {
 public:
  explicit ByteTokenizer(int32_t vocab_size) : vocab_size_(vocab_size) {}

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() + 1);
    if (add_bos && bos_id()) ids.push_back(kBosId);
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

  absl::StatusOr<std::string> DecodeBytes(std::span<const int32_t> ids,
                                          bool skip_special) const override {
    std::string out;
    out.reserve(ids.size());
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size_) {
        return absl::InvalidArgumentError(
            absl::StrCat("token id ", id, " is outside the vocabulary [0, ", vocab_size_, ")"));
      }
      if (id >= kFirstNonByteId) {
        absl::StrAppend(&out, "<tok_", id, ">");
      } else if (id >= kByteOffset) {
        out.push_back(static_cast<char>(id - kByteOffset));
      } else if (!skip_special) {
        out += id == kUnkId ? "<unk>" : id == kBosId ? "<s>" : "</s>";
      }
    }
    return out;
  }

  int32_t vocab_size() const override { return vocab_size_; }
  std::optional<int32_t> bos_id() const override {
    return kBosId < vocab_size_ ? std::optional<int32_t>(kBosId) : std::nullopt;
  }
  std::optional<int32_t> eos_id() const override {
    return kEosId < vocab_size_ ? std::optional<int32_t>(kEosId) : std::nullopt;
  }
  bool IsSpecial(int32_t id) const override {
    return id >= 0 && id < kByteOffset && id < vocab_size_;
  }

 private:
  int32_t vocab_size_;
};

// Length of the UTF-8 sequence a lead byte starts (0 when it cannot start one)
// and the allowed range of the byte after it (Unicode Table 3-7: no overlong
// forms, no surrogates, nothing above U+10FFFF).
struct Lead {
  int length;
  unsigned char lo, hi;
};
Lead ClassifyLead(unsigned char b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Appends the valid UTF-8 of `in` to `out`, each maximal invalid subpart as one
// U+FFFD (the Unicode / WHATWG convention, as Python's errors="replace").
// Returns how many trailing bytes were held back because they are the valid
// start of a sequence that `in` ends before completing (never when `final`:
// then such a tail becomes one U+FFFD).
size_t AppendValidUtf8(const std::string& in, bool final, std::string& out) {
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = static_cast<unsigned char>(in[i]);
    const Lead lead = ClassifyLead(b);
    if (lead.length == 1) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    if (lead.length == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    int j = 1;  // bytes of the sequence seen so far
    bool invalid = false;
    while (j < lead.length) {
      if (i + j >= n) break;  // ran out of bytes
      const unsigned char c = static_cast<unsigned char>(in[i + j]);
      const unsigned char lo = j == 1 ? lead.lo : 0x80;
      const unsigned char hi = j == 1 ? lead.hi : 0xBF;
      if (c < lo || c > hi) {
        invalid = true;
        break;
      }
      ++j;
    }
    if (invalid) {
      out += kReplacement;  // the maximal subpart in[i, i + j)
      i += j;
    } else if (j < lead.length) {
      if (!final) return n - i;
      out += kReplacement;
      i = n;
    } else {
      out.append(in, i, lead.length);
      i += lead.length;
    }
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::string> IncrementalDecoder::Append(std::span<const int32_t> ids) {
  absl::StatusOr<std::string> bytes = tokenizer_->DecodeBytes(ids, skip_special_);
  if (!bytes.ok()) return bytes.status();
  pending_ += *bytes;
  std::string out;
  const size_t held = AppendValidUtf8(pending_, /*final=*/false, out);
  pending_.erase(0, pending_.size() - held);
  return out;
}

std::string IncrementalDecoder::Flush() {
  std::string out;
  AppendValidUtf8(pending_, /*final=*/true, out);
  pending_.clear();
  return out;
}

std::unique_ptr<Tokenizer> MakeByteTokenizer(int32_t vocab_size) {
  return std::make_unique<ByteTokenizer>(vocab_size);
}

}  // namespace tessera
