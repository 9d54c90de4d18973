#include "router/tenant_config.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace tessera::router {
namespace {

using Json = nlohmann::json;

constexpr size_t kMinKeyLength = 8;
constexpr size_t kMaxKeyLength = 512;
constexpr size_t kMaxNameLength = 64;
constexpr size_t kMaxTenants = 10000;

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

// Reads an optional integer field in [lo, hi] into `out`.
absl::Status ReadInt(const Json& entry, const char* field, const std::string& where, int64_t lo,
                     int64_t hi, int64_t* out) {
  auto it = entry.find(field);
  if (it == entry.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"", field, "\" must be an integer"));
  }
  const int64_t v = it->is_number_unsigned() && it->get<uint64_t>() > uint64_t{INT64_MAX}
                        ? INT64_MAX
                        : it->get<int64_t>();
  if (v < lo || v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"", field, "\" must be in [", lo, ", ", hi, "], got ", v));
  }
  *out = v;
  return absl::OkStatus();
}

absl::StatusOr<KeyedTenant> ParseEntry(const Json& entry, size_t index) {
  std::string where = absl::StrCat("tenants[", index, "]");
  if (!entry.is_object())
    return absl::InvalidArgumentError(absl::StrCat(where, " must be an object"));
  static const absl::flat_hash_set<std::string> kFields = {
      "name", "key", "weight", "max_concurrent_requests", "tokens_per_minute", "max_priority"};
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (!kFields.contains(it.key())) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unknown field \"", it.key(),
                       "\" (known: name, key, weight, max_concurrent_requests, tokens_per_minute, "
                       "max_priority)"));
    }
  }
  KeyedTenant t;
  auto name = entry.find("name");
  if (name == entry.end() || !name->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"name\" (a string) is required"));
  }
  t.policy.name = name->get<std::string>();
  if (!ValidName(t.policy.name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"name\" must be 1 to ", kMaxNameLength,
                     " characters of [A-Za-z0-9_.-], got \"", t.policy.name, "\""));
  }
  if (t.policy.name == kDefaultTenant || t.policy.name == kUserTenantLabel) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the name \"", t.policy.name,
                     "\" is reserved (the default tenant and user-derived tenants use it)"));
  }
  where = absl::StrCat(where, " (", t.policy.name, ")");
  t.policy.metrics_label = t.policy.name;
  auto key = entry.find("key");
  if (key == entry.end() || !key->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"key\" (a string) is required"));
  }
  t.key = key->get<std::string>();
  if (t.key.size() < kMinKeyLength || t.key.size() > kMaxKeyLength) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": \"key\" must be ", kMinKeyLength,
                                                   " to ", kMaxKeyLength, " bytes, got ",
                                                   t.key.size()));
  }
  for (char c : t.key) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       ": \"key\" must be printable ASCII without spaces (it is sent in an "
                       "'authorization: Bearer' header)"));
    }
  }
  if (auto w = entry.find("weight"); w != entry.end() && !w->is_null()) {
    if (!w->is_number()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": \"weight\" must be a number"));
    }
    t.policy.weight = w->get<double>();
    if (!std::isfinite(t.policy.weight) || t.policy.weight <= 0 || t.policy.weight > 1e6) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": \"weight\" must be in (0, 1000000], got ", t.policy.weight));
    }
  }
  if (absl::Status s = ReadInt(entry, "max_concurrent_requests", where, 0, 1 << 30,
                               &t.policy.max_concurrent_requests);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ReadInt(entry, "tokens_per_minute", where, 0, int64_t{1} << 50,
                               &t.policy.tokens_per_minute);
      !s.ok()) {
    return s;
  }
  int64_t max_priority = t.policy.max_priority;
  if (absl::Status s = ReadInt(entry, "max_priority", where, INT32_MIN, INT32_MAX, &max_priority);
      !s.ok()) {
    return s;
  }
  t.policy.max_priority = static_cast<int32_t>(max_priority);
  return t;
}

}  // namespace

absl::StatusOr<std::vector<KeyedTenant>> ParseApiKeys(absl::string_view json) {
  Json doc = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(
        "not valid JSON (expected {\"tenants\": [{\"name\": ..., \"key\": ..., ...}]})");
  }
  if (!doc.is_object()) return absl::InvalidArgumentError("the top level must be a JSON object");
  auto tenants = doc.find("tenants");
  if (tenants == doc.end() || !tenants->is_array()) {
    return absl::InvalidArgumentError("\"tenants\" (an array of tenant objects) is required");
  }
  if (tenants->empty()) return absl::InvalidArgumentError("\"tenants\" is empty");
  if (tenants->size() > kMaxTenants) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"tenants\" has ", tenants->size(), " entries (max ", kMaxTenants, ")"));
  }
  std::vector<KeyedTenant> out;
  absl::flat_hash_set<std::string> names;
  absl::flat_hash_set<std::string> keys;
  for (size_t i = 0; i < tenants->size(); ++i) {
    absl::StatusOr<KeyedTenant> t = ParseEntry((*tenants)[i], i);
    if (!t.ok()) return t.status();
    if (!names.insert(t->policy.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tenants[", i, "]: the name \"", t->policy.name, "\" is used twice"));
    }
    if (!keys.insert(t->key).second) {
      return absl::InvalidArgumentError(absl::StrCat("tenants[", i, "] (", t->policy.name,
                                                     "): its key is also another tenant's key"));
    }
    out.push_back(*std::move(t));
  }
  return out;
}

absl::StatusOr<std::vector<KeyedTenant>> LoadApiKeysFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string why = std::strerror(err);
    if (err == EACCES) {
      return absl::PermissionDeniedError(absl::StrCat("--api-keys ", path, ": ", why));
    }
    return absl::NotFoundError(absl::StrCat("--api-keys ", path, ": ", why));
  }
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::vector<KeyedTenant>> tenants = ParseApiKeys(text.str());
  if (!tenants.ok()) {
    return absl::Status(tenants.status().code(),
                        absl::StrCat("--api-keys ", path, ": ", tenants.status().message()));
  }
  return tenants;
}

}  // namespace tessera::router
