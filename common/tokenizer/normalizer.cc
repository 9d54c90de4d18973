#include "common/tokenizer/normalizer.h"

#include <vector>

#include "common/status_macros.h"
#include "common/tokenizer/regex.h"
#include "common/tokenizer/unicode.h"

namespace tessera::hf {
namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  absl::Status Normalize(std::string* text) const override {
    if (IsNormalizedQuick(*text, form_)) return absl::OkStatus();
    ASSIGN_OR_RETURN(*text, NormalizeUnicode(*text, form_));
    return absl::OkStatus();
  }

 private:
  NormalForm form_;
};

// Prepends a string to any non-empty text.
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  absl::Status Normalize(std::string* text) const override {
    if (!text->empty()) text->insert(0, prefix_);
    return absl::OkStatus();
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  absl::Status Normalize(std::string* text) const override {
    ASSIGN_OR_RETURN(*text, pattern_->ReplaceAll(*text, content_));
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Pattern> pattern_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  absl::Status Normalize(std::string* text) const override {
    for (const auto& step : steps_) RETURN_IF_ERROR(step->Normalize(text));
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& j, absl::string_view path) {
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, path));
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFKD);
  if (type == "Prepend") {
    ASSIGN_OR_RETURN(std::string prefix, StringField(j, "prepend", path));
    return std::make_unique<PrependNormalizer>(std::move(prefix));
  }
  if (type == "Replace") {
    ASSIGN_OR_RETURN(std::unique_ptr<Pattern> pattern, PatternField(j, "pattern", path));
    ASSIGN_OR_RETURN(std::string content, StringField(j, "content", path));
    return std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content));
  }
  if (type == "Sequence") {
    ASSIGN_OR_RETURN(const Json* list, ArrayField(j, "normalizers", path));
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(std::unique_ptr<Normalizer> step,
                       ParseNormalizer((*list)[i], JoinPath(JoinPath(path, "normalizers"), i)));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  return UnsupportedType(path, "normalizer", type,
                         "NFC, NFD, NFKC, NFKD, Prepend, Replace, Sequence");
}

}  // namespace tessera::hf
