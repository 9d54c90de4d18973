#include "common/tokenizer/json_fields.h"

#include "absl/strings/str_cat.h"

namespace tessera::hf {
namespace {

const Json* Find(const Json& j, absl::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(std::string(key));
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

absl::Status WrongType(absl::string_view path, absl::string_view want, const Json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": expected ", want, ", got ", got.type_name()));
}

}  // namespace

std::string JoinPath(absl::string_view path, absl::string_view key) {
  return absl::StrCat(path, ".", key);
}

std::string JoinPath(absl::string_view path, size_t index) {
  return absl::StrCat(path, "[", index, "]");
}

absl::StatusOr<std::string> ComponentType(const Json& j, absl::string_view path) {
  if (!j.is_object()) return WrongType(path, "an object", j);
  return StringField(j, "type", path);
}

absl::Status UnsupportedType(absl::string_view path, absl::string_view kind, absl::string_view type,
                             absl::string_view supported) {
  return absl::UnimplementedError(absl::StrCat(path, ": ", kind, " type \"", type,
                                               "\" is not supported (supported: ", supported, ")"));
}

absl::StatusOr<std::string> StringField(const Json& j, absl::string_view key,
                                        absl::string_view path) {
  const Json* v = Find(j, key);
  if (v == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(JoinPath(path, key), ": missing"));
  }
  if (!v->is_string()) return WrongType(JoinPath(path, key), "a string", *v);
  return v->get<std::string>();
}

absl::StatusOr<std::optional<std::string>> OptionalStringField(const Json& j, absl::string_view key,
                                                               absl::string_view path) {
  const Json* v = Find(j, key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return WrongType(JoinPath(path, key), "a string", *v);
  return std::optional<std::string>(v->get<std::string>());
}

absl::StatusOr<bool> BoolField(const Json& j, absl::string_view key, bool fallback,
                               absl::string_view path) {
  const Json* v = Find(j, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) return WrongType(JoinPath(path, key), "a boolean", *v);
  return v->get<bool>();
}

absl::StatusOr<int64_t> IntField(const Json& j, absl::string_view key, int64_t fallback,
                                 absl::string_view path) {
  const Json* v = Find(j, key);
  if (v == nullptr) return fallback;
  if (!v->is_number_integer() || v->get<int64_t>() < 0) {
    return WrongType(JoinPath(path, key), "a non-negative integer", *v);
  }
  return v->get<int64_t>();
}

absl::StatusOr<const Json*> ArrayField(const Json& j, absl::string_view key,
                                       absl::string_view path) {
  const Json* v = Find(j, key);
  if (v == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(JoinPath(path, key), ": missing"));
  }
  if (!v->is_array()) return WrongType(JoinPath(path, key), "an array", *v);
  return v;
}

absl::StatusOr<std::unique_ptr<Pattern>> PatternField(const Json& j, absl::string_view key,
                                                      absl::string_view path) {
  const std::string p = JoinPath(path, key);
  const Json* v = Find(j, key);
  if (v == nullptr) return absl::InvalidArgumentError(absl::StrCat(p, ": missing"));
  if (v->is_object() && v->size() == 1) {
    if (auto s = v->find("String"); s != v->end() && s->is_string()) {
      return Pattern::Literal(s->get<std::string>());
    }
    if (auto r = v->find("Regex"); r != v->end() && r->is_string()) {
      return Pattern::Regex(r->get<std::string>(), p);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(p, ": expected {\"String\": ...} or {\"Regex\": ...}, got ", v->dump()));
}

}  // namespace tessera::hf
