#include "common/tokenizer/loader.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/tokenizer/hf_tokenizer.h"
#include "nlohmann/json.hpp"
#include "xxhash.h"

namespace tessera {
namespace {

using Json = nlohmann::json;

absl::StatusOr<std::optional<std::string>> ReadIfExists(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<std::string>();
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return absl::UnavailableError(absl::StrCat("cannot read ", path.string()));
  }
  return std::optional<std::string>(text.str());
}

absl::StatusOr<Json> ParseObject(const std::optional<std::string>& text, absl::string_view file) {
  if (!text.has_value()) return Json::object();
  Json j = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
  }
  return j;
}

// A special token of tokenizer_config.json: a string, an AddedToken object
// ({"content": ...}) or null/absent.
absl::StatusOr<std::optional<std::string>> SpecialTokenString(const Json& config,
                                                              absl::string_view key) {
  auto it = config.find(std::string(key));
  if (it == config.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object()) {
    if (auto c = it->find("content"); c != it->end() && c->is_string()) {
      return std::optional<std::string>(c->get<std::string>());
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("tokenizer_config.json: ", key,
                                                 ": expected a string or {\"content\": ...}, got ",
                                                 it->dump()));
}

absl::StatusOr<std::string> ChatTemplate(const Json& config) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {  // [{"name": ..., "template": ...}]: take "default"
    for (const Json& t : *it) {
      if (t.is_object() && t.value("name", "") == "default" && t.contains("template") &&
          t["template"].is_string()) {
        return t["template"].get<std::string>();
      }
    }
    return absl::InvalidArgumentError(
        "tokenizer_config.json: chat_template: a list without a \"default\" template");
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "tokenizer_config.json: chat_template: expected a string or a list, got ", it->type_name()));
}

// The token id of special-token string `token`, which must exist.
absl::StatusOr<std::optional<int32_t>> IdOf(const Tokenizer& t,
                                            const std::optional<std::string>& token,
                                            absl::string_view key) {
  if (!token.has_value()) return std::optional<int32_t>();
  std::optional<int32_t> id = t.TokenToId(*token);
  if (!id.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer_config.json: ", key, " \"", *token,
                                                   "\" is not a token of tokenizer.json"));
  }
  return id;
}

// generation_config.json's eos_token_id: an int, a list of ints, or absent.
absl::StatusOr<std::vector<int32_t>> GenerationEosIds(const Json& gen, int32_t vocab_size) {
  std::vector<int32_t> ids;
  auto it = gen.find("eos_token_id");
  if (it == gen.end() || it->is_null()) return ids;
  const Json list = it->is_array() ? *it : Json::array({*it});
  for (const Json& v : list) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("generation_config.json: eos_token_id: ", v.dump(),
                       " is not a token id in [0, ", vocab_size, ")"));
    }
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

// transformers' LlamaTokenizerFast (and the Code Llama / Gemma ones built on
// it) rebuild the post-processor from add_bos_token / add_eos_token.
bool RebuildsPostProcessor(const Json& config) {
  const std::string cls = config.value("tokenizer_class", "");
  for (absl::string_view c : {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer",
                              "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"}) {
    if (cls == c) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<TokenizerFiles> TokenizerFiles::ReadDir(absl::string_view dir) {
  const std::filesystem::path root(std::string(dir.data(), dir.size()));
  TokenizerFiles files;
  ASSIGN_OR_RETURN(files.tokenizer_json, ReadIfExists(root / "tokenizer.json"));
  ASSIGN_OR_RETURN(files.tokenizer_config_json, ReadIfExists(root / "tokenizer_config.json"));
  ASSIGN_OR_RETURN(files.generation_config_json, ReadIfExists(root / "generation_config.json"));
  ASSIGN_OR_RETURN(files.chat_template_jinja, ReadIfExists(root / "chat_template.jinja"));
  if (!files.tokenizer_json.has_value()) {
    for (const char* other : {"tokenizer.model", "vocab.json", "tiktoken.model"}) {
      std::error_code ec;
      if (std::filesystem::exists(root / other, ec)) {
        return absl::FailedPreconditionError(
            absl::StrCat(dir, " has ", other,
                         " but no tokenizer.json; only tokenizer.json is "
                         "supported (convert it with Hugging Face transformers)"));
      }
    }
  }
  return files;
}

std::string TokenizerFilesHash(const TokenizerFiles& files) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_128bits_reset(state);
  for (const auto* f : {&files.tokenizer_json, &files.tokenizer_config_json,
                        &files.generation_config_json, &files.chat_template_jinja}) {
    const uint64_t size = f->has_value() ? (*f)->size() : ~uint64_t{0};
    XXH3_128bits_update(state, &size, sizeof(size));
    if (f->has_value()) XXH3_128bits_update(state, (*f)->data(), (*f)->size());
  }
  const XXH128_hash_t h = XXH3_128bits_digest(state);
  XXH3_freeState(state);
  return absl::StrFormat("%016x%016x", h.high64, h.low64);
}

absl::StatusOr<LoadedTokenizer> LoadTokenizer(const TokenizerFiles& files,
                                              int32_t byte_vocab_size) {
  LoadedTokenizer out;
  TokenizerInfo& info = out.info;
  info.hash = TokenizerFilesHash(files);
  ASSIGN_OR_RETURN(const Json config,
                   ParseObject(files.tokenizer_config_json, "tokenizer_config.json"));
  ASSIGN_OR_RETURN(const Json gen,
                   ParseObject(files.generation_config_json, "generation_config.json"));
  ASSIGN_OR_RETURN(info.chat_template, ChatTemplate(config));
  if (files.chat_template_jinja.has_value()) info.chat_template = *files.chat_template_jinja;
  if (auto m = config.find("model_max_length"); m != config.end() && m->is_number()) {
    const double v = m->get<double>();
    if (v > 0 && v < 9.0e15) info.model_max_length = static_cast<int64_t>(v);
  }
  if (!files.tokenizer_json.has_value()) {
    info.byte_tokenizer = true;
    out.tokenizer = MakeByteTokenizer(byte_vocab_size);
    info.bos_id = out.tokenizer->bos_id();
    info.eos_ids = out.tokenizer->eos_ids();
    return out;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<hf::HfTokenizer> tok,
                   hf::HfTokenizer::FromJson(*files.tokenizer_json));
  ASSIGN_OR_RETURN(info.bos_token, SpecialTokenString(config, "bos_token"));
  ASSIGN_OR_RETURN(info.eos_token, SpecialTokenString(config, "eos_token"));
  ASSIGN_OR_RETURN(info.unk_token, SpecialTokenString(config, "unk_token"));
  ASSIGN_OR_RETURN(info.pad_token, SpecialTokenString(config, "pad_token"));
  ASSIGN_OR_RETURN(info.bos_id, IdOf(*tok, info.bos_token, "bos_token"));
  ASSIGN_OR_RETURN(std::optional<int32_t> eos, IdOf(*tok, info.eos_token, "eos_token"));
  ASSIGN_OR_RETURN(info.pad_id, IdOf(*tok, info.pad_token, "pad_token"));
  if (!info.bos_id.has_value()) {
    if (auto b = gen.find("bos_token_id"); b != gen.end() && b->is_number_integer() &&
                                           b->get<int64_t>() >= 0 &&
                                           b->get<int64_t>() < tok->vocab_size()) {
      info.bos_id = b->get<int32_t>();
    }
  }
  if (eos.has_value()) info.eos_ids.push_back(*eos);
  ASSIGN_OR_RETURN(std::vector<int32_t> gen_eos, GenerationEosIds(gen, tok->vocab_size()));
  for (int32_t id : gen_eos) {
    if (std::find(info.eos_ids.begin(), info.eos_ids.end(), id) == info.eos_ids.end()) {
      info.eos_ids.push_back(id);
    }
  }
  if (RebuildsPostProcessor(config)) {
    const bool add_bos = config.value("add_bos_token", true);
    const bool add_eos = config.value("add_eos_token", false);
    if ((add_bos && !info.bos_id.has_value()) || (add_eos && !eos.has_value())) {
      return absl::InvalidArgumentError(
          "tokenizer_config.json: add_bos_token/add_eos_token set without that token");
    }
    tok->SetPostProcessor(hf::MakeBosEosProcessor(add_bos ? info.bos_id : std::nullopt,
                                                  add_eos ? eos : std::nullopt));
  }
  tok->SetSpecialIds(info.bos_id, info.eos_ids);
  out.tokenizer = std::move(tok);
  return out;
}

absl::StatusOr<LoadedTokenizer> LoadTokenizerFromDir(absl::string_view dir,
                                                     int32_t byte_vocab_size) {
  ASSIGN_OR_RETURN(const TokenizerFiles files, TokenizerFiles::ReadDir(dir));
  return LoadTokenizer(files, byte_vocab_size);
}

}  // namespace tessera
