#include "common/tokenizer/decoder.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/regex.h"
#include "common/tokenizer/unicode.h"

namespace tessera::hf {
namespace {

// Every token's characters back to bytes (a token with a character outside
// the byte map contributes its own UTF-8), then one lossy UTF-8 string.
class ByteLevelDecoder final : public Decoder {
 public:
  absl::Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::string bytes;
    for (const std::string& t : *tokens) {
      const size_t mark = bytes.size();
      bool mapped = true;
      for (size_t i = 0; i < t.size();) {
        int len = 0;
        const std::optional<uint8_t> b = CharToByte(DecodeUtf8(t, i, &len));
        if (!b.has_value()) {
          mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(*b));
        i += len;
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes.append(t);
      }
    }
    std::string text;
    AppendLossyUtf8(bytes, &text);
    tokens->assign(1, std::move(text));
    return absl::OkStatus();
  }
};

// The replacement character becomes a space, except in the first token when
// the scheme prepends one (there it is dropped).
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_first)
      : replacement_(std::move(replacement)), drop_first_(drop_first) {}
  absl::Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& t = (*tokens)[i];
      std::string out;
      out.reserve(t.size());
      for (size_t p = 0; p < t.size();) {
        if (absl::StartsWith(absl::string_view(t).substr(p), replacement_)) {
          if (i != 0 || !drop_first_) out.push_back(' ');
          p += replacement_.size();
        } else {
          out.push_back(t[p++]);
        }
      }
      t = std::move(out);
    }
    return absl::OkStatus();
  }

 private:
  std::string replacement_;
  bool drop_first_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::unique_ptr<Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  absl::Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      ASSIGN_OR_RETURN(t, pattern_->ReplaceAll(t, content_));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  std::string content_;
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte a "<0xHH>" token stands for (Rust's u8::from_str_radix also takes
// "+H"), or -1.
int FallbackByte(absl::string_view t) {
  if (t.size() != 6 || !absl::StartsWith(t, "<0x") || t[5] != '>') return -1;
  const int lo = HexDigit(t[4]);
  if (lo < 0) return -1;
  if (t[3] == '+') return lo;
  const int hi = HexDigit(t[3]);
  return hi < 0 ? -1 : hi * 16 + lo;
}

// Runs of <0xHH> tokens become their UTF-8 text, or one U+FFFD per byte when
// the run is not valid UTF-8.
class ByteFallbackDecoder final : public Decoder {
 public:
  absl::Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens->size());
    std::string run;
    auto flush = [&] {
      if (run.empty()) return;
      if (!FindInvalidUtf8(run).has_value()) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run.size(); ++i) out.emplace_back(kReplacementChar);
      }
      run.clear();
    };
    for (std::string& t : *tokens) {
      const int b = FallbackByte(t);
      if (b >= 0) {
        run.push_back(static_cast<char>(b));
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    *tokens = std::move(out);
    return absl::OkStatus();
  }
};

class FuseDecoder final : public Decoder {
 public:
  absl::Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::string all;
    for (const std::string& t : *tokens) all += t;
    tokens->assign(1, std::move(all));
    return absl::OkStatus();
  }
};

// Removes up to `start` leading and `stop` trailing `content` characters from
// every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  absl::Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      absl::string_view v = t;
      for (size_t i = 0; i < start_ && absl::StartsWith(v, content_); ++i)
        v.remove_prefix(content_.size());
      for (size_t i = 0; i < stop_ && absl::EndsWith(v, content_); ++i)
        v.remove_suffix(content_.size());
      t = std::string(v);
    }
    return absl::OkStatus();
  }

 private:
  std::string content_;
  size_t start_;
  size_t stop_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  absl::Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& step : steps_) RETURN_IF_ERROR(step->DecodeChain(tokens));
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

absl::StatusOr<std::unique_ptr<Decoder>> ParseMetaspaceDecoder(const Json& j,
                                                               absl::string_view path) {
  ASSIGN_OR_RETURN(std::string replacement, StringField(j, "replacement", path));
  ASSIGN_OR_RETURN(std::optional<std::string> scheme,
                   OptionalStringField(j, "prepend_scheme", path));
  bool drop_first = true;
  if (scheme.has_value()) {
    drop_first = *scheme != "never";
  } else {
    ASSIGN_OR_RETURN(drop_first, BoolField(j, "add_prefix_space", true, path));
  }
  return std::make_unique<MetaspaceDecoder>(std::move(replacement), drop_first);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const Json& j, absl::string_view path) {
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, path));
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") return ParseMetaspaceDecoder(j, path);
  if (type == "Replace") {
    ASSIGN_OR_RETURN(std::unique_ptr<Pattern> pattern, PatternField(j, "pattern", path));
    ASSIGN_OR_RETURN(std::string content, StringField(j, "content", path));
    return std::make_unique<ReplaceDecoder>(std::move(pattern), std::move(content));
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    ASSIGN_OR_RETURN(std::string content, StringField(j, "content", path));
    ASSIGN_OR_RETURN(const int64_t start, IntField(j, "start", 0, path));
    ASSIGN_OR_RETURN(const int64_t stop, IntField(j, "stop", 0, path));
    return std::make_unique<StripDecoder>(std::move(content), start, stop);
  }
  if (type == "Sequence") {
    ASSIGN_OR_RETURN(const Json* list, ArrayField(j, "decoders", path));
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(std::unique_ptr<Decoder> step,
                       ParseDecoder((*list)[i], JoinPath(JoinPath(path, "decoders"), i)));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  return UnsupportedType(path, "decoder", type,
                         "ByteFallback, ByteLevel, Fuse, Metaspace, Replace, Sequence, Strip");
}

}  // namespace tessera::hf
