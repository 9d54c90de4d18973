#include "common/tokenizer/post_processor.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace tessera::hf {
namespace {

// The single-sequence template: each element is either the sequence (empty
// vector marker) or the ids of a special token.
class TemplateProcessor final : public PostProcessor {
 public:
  struct Piece {
    bool is_sequence;
    std::vector<int32_t> ids;
  };
  explicit TemplateProcessor(std::vector<Piece> pieces) : pieces_(std::move(pieces)) {}
  void Process(std::vector<int32_t>* ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids->size() + 4);
    for (const Piece& p : pieces_) {
      if (p.is_sequence) {
        out.insert(out.end(), ids->begin(), ids->end());
      } else {
        out.insert(out.end(), p.ids.begin(), p.ids.end());
      }
    }
    *ids = std::move(out);
  }

 private:
  std::vector<Piece> pieces_;
};

class NoOpProcessor final : public PostProcessor {
 public:
  void Process(std::vector<int32_t>*) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void Process(std::vector<int32_t>* ids) const override {
    for (const auto& step : steps_) step->Process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

absl::StatusOr<std::unique_ptr<PostProcessor>> ParseTemplate(const Json& j,
                                                             absl::string_view path) {
  // special_tokens: {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}, ...}
  absl::flat_hash_map<std::string, std::vector<int32_t>> specials;
  const std::string sp = JoinPath(path, "special_tokens");
  if (auto it = j.find("special_tokens"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return absl::InvalidArgumentError(sp + ": expected an object");
    for (const auto& [name, t] : it->items()) {
      const std::string p = JoinPath(sp, name);
      ASSIGN_OR_RETURN(const Json* ids, ArrayField(t, "ids", p));
      std::vector<int32_t> v;
      for (const Json& id : *ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0) {
          return absl::InvalidArgumentError(absl::StrCat(p, ".ids: invalid id ", id.dump()));
        }
        v.push_back(id.get<int32_t>());
      }
      specials[name] = std::move(v);
    }
  }
  const std::string single_path = JoinPath(path, "single");
  ASSIGN_OR_RETURN(const Json* single, ArrayField(j, "single", path));
  std::vector<TemplateProcessor::Piece> pieces;
  for (size_t i = 0; i < single->size(); ++i) {
    const std::string p = JoinPath(single_path, i);
    const Json& e = (*single)[i];
    if (auto s = e.find("Sequence"); e.is_object() && s != e.end()) {
      pieces.push_back({true, {}});
    } else if (auto t = e.find("SpecialToken"); e.is_object() && t != e.end()) {
      ASSIGN_OR_RETURN(const std::string name, StringField(*t, "id", JoinPath(p, "SpecialToken")));
      auto found = specials.find(name);
      if (found == specials.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(p, ": special token \"", name, "\" is not in ", sp));
      }
      pieces.push_back({false, found->second});
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(p, ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}"));
    }
  }
  return std::make_unique<TemplateProcessor>(std::move(pieces));
}

// BertProcessing / RobertaProcessing: "cls": [token, id], "sep": [token, id].
absl::StatusOr<std::unique_ptr<PostProcessor>> ParseClsSep(const Json& j, absl::string_view path) {
  std::vector<TemplateProcessor::Piece> pieces;
  for (const char* key : {"cls", "sep"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(JoinPath(path, key), ": expected [token, id]"));
    }
    if (absl::string_view(key) == "sep") pieces.push_back({true, {}});
    pieces.push_back({false, {(*it)[1].get<int32_t>()}});
  }
  return std::make_unique<TemplateProcessor>(std::move(pieces));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const Json& j,
                                                                  absl::string_view path) {
  ASSIGN_OR_RETURN(const std::string type, ComponentType(j, path));
  if (type == "TemplateProcessing") return ParseTemplate(j, path);
  if (type == "BertProcessing" || type == "RobertaProcessing") return ParseClsSep(j, path);
  if (type == "ByteLevel") return std::make_unique<NoOpProcessor>();
  if (type == "Sequence") {
    ASSIGN_OR_RETURN(const Json* list, ArrayField(j, "processors", path));
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      ASSIGN_OR_RETURN(std::unique_ptr<PostProcessor> step,
                       ParsePostProcessor((*list)[i], JoinPath(JoinPath(path, "processors"), i)));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  return UnsupportedType(path, "post-processor", type,
                         "BertProcessing, ByteLevel, RobertaProcessing, Sequence, "
                         "TemplateProcessing");
}

std::unique_ptr<PostProcessor> MakeBosEosProcessor(std::optional<int32_t> bos,
                                                   std::optional<int32_t> eos) {
  std::vector<TemplateProcessor::Piece> pieces;
  if (bos.has_value()) pieces.push_back({false, {*bos}});
  pieces.push_back({true, {}});
  if (eos.has_value()) pieces.push_back({false, {*eos}});
  return std::make_unique<TemplateProcessor>(std::move(pieces));
}

}  // namespace tessera::hf
