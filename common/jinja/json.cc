#include "common/jinja/json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/operators.h"
#include "common/jinja/py_repr.h"
#include "common/jinja/unicode.h"

namespace tessera::jinja {
namespace {

constexpr int kMaxJsonDepth = 256;

absl::StatusOr<Value> FromJson(const nlohmann::ordered_json& j, const std::string& path,
                               int depth) {
  if (depth > kMaxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": nesting deeper than ", kMaxJsonDepth, " levels"));
  }
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
    case nlohmann::ordered_json::value_t::discarded:
      return Value::None();
    case nlohmann::ordered_json::value_t::boolean:
      return Value::Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value::Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const auto u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::Float(static_cast<double>(u));
      return Value::Int(static_cast<int64_t>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Value::Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      if (!IsValidUtf8(s))
        return absl::InvalidArgumentError(absl::StrCat(path, ": string is not valid UTF-8"));
      return Value::String(s);
    }
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      size_t i = 0;
      for (const auto& e : j) {
        auto v = FromJson(e, absl::StrCat(path, "[", i++, "]"), depth + 1);
        if (!v.ok()) return v.status();
        items.push_back(*std::move(v));
      }
      return Value::List(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto dict = std::make_shared<Dict>();
      for (const auto& [k, e] : j.items()) {
        if (!IsValidUtf8(k))
          return absl::InvalidArgumentError(absl::StrCat(path, ": key is not valid UTF-8"));
        auto v = FromJson(e, path.empty() ? k : absl::StrCat(path, ".", k), depth + 1);
        if (!v.ok()) return v.status();
        dict->Set(Value::String(k), *std::move(v));
      }
      return Value::FromDict(std::move(dict));
    }
    case nlohmann::ordered_json::value_t::binary:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(path, ": binary JSON values are not supported"));
}

void DumpString(absl::string_view s, bool ensure_ascii, std::string& out) {
  out += '"';
  for (char32_t cp : DecodeUtf8(s)) {
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    char buf[16];
    if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
      if (cp >= 0x10000) {
        const char32_t v = cp - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
      }
      out += buf;
    } else {
      AppendUtf8(cp, out);
    }
  }
  out += '"';
}

std::string FloatJson(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return PyFloatRepr(d);
}

class Dumper {
 public:
  explicit Dumper(const JsonDumpOptions& o)
      : o_(o),
        item_sep_(o.item_separator.value_or(o.indent ? "," : ", ")),
        key_sep_(o.key_separator.value_or(": ")) {}

  absl::Status Dump(const Value& v, int level, std::string& out) {
    if (level > kMaxJsonDepth) return absl::InvalidArgumentError("tojson: value nested too deeply");
    if (out.size() > (256u << 20))
      return absl::ResourceExhaustedError("tojson: output exceeds 256 MiB");
    switch (v.kind()) {
      case Value::Kind::kNone:
        out += "null";
        return absl::OkStatus();
      case Value::Kind::kBool:
        out += v.bool_value() ? "true" : "false";
        return absl::OkStatus();
      case Value::Kind::kInt:
        out += std::to_string(v.int_value());
        return absl::OkStatus();
      case Value::Kind::kFloat:
        out += FloatJson(v.float_value());
        return absl::OkStatus();
      case Value::Kind::kString:
        DumpString(v.str(), o_.ensure_ascii, out);
        return absl::OkStatus();
      case Value::Kind::kList: {
        const auto& items = v.items();
        if (items.empty()) {
          out += "[]";
          return absl::OkStatus();
        }
        out += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += item_sep_;
          Newline(level + 1, out);
          if (auto s = Dump(items[i], level + 1, out); !s.ok()) return s;
        }
        Newline(level, out);
        out += ']';
        return absl::OkStatus();
      }
      case Value::Kind::kDict: {
        std::vector<std::pair<std::string, const Value*>> entries;
        for (const auto& [k, val] : v.dict().entries()) {
          std::string key;
          if (k.is_string()) {
            key = k.str();
          } else if (k.is_bool()) {
            key = k.bool_value() ? "true" : "false";
          } else if (k.is_int()) {
            key = std::to_string(k.int_value());
          } else if (k.is_float()) {
            key = FloatJson(k.float_value());
          } else if (k.is_none()) {
            key = "null";
          } else {
            return absl::InvalidArgumentError(
                absl::StrCat("keys must be str, int, float, bool or None, not ", k.TypeName()));
          }
          entries.emplace_back(std::move(key), &val);
        }
        if (o_.sort_keys) {
          for (const auto& [k, val] : v.dict().entries()) {
            if (!k.is_string()) {
              return absl::InvalidArgumentError(
                  "'<' not supported between instances of 'str' and '" + k.TypeName() + "'");
            }
          }
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto& a, const auto& b) { return a.first < b.first; });
        }
        if (entries.empty()) {
          out += "{}";
          return absl::OkStatus();
        }
        out += '{';
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i > 0) out += item_sep_;
          Newline(level + 1, out);
          DumpString(entries[i].first, o_.ensure_ascii, out);
          out += key_sep_;
          if (auto s = Dump(*entries[i].second, level + 1, out); !s.ok()) return s;
        }
        Newline(level, out);
        out += '}';
        return absl::OkStatus();
      }
      case Value::Kind::kUndefined:
      case Value::Kind::kObject:
      case Value::Kind::kIterator:
        break;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("Object of type ", v.TypeName(), " is not JSON serializable"));
  }

 private:
  void Newline(int level, std::string& out) const {
    if (!o_.indent) return;
    out += '\n';
    for (int i = 0; i < level; ++i) out += *o_.indent;
  }

  const JsonDumpOptions& o_;
  std::string item_sep_;
  std::string key_sep_;
};

}  // namespace

absl::StatusOr<Value> ValueFromJson(const nlohmann::ordered_json& json, const std::string& path) {
  return FromJson(json, path, 0);
}

absl::StatusOr<std::string> PyJsonDumps(const Value& value, const JsonDumpOptions& options) {
  std::string out;
  Dumper dumper(options);
  if (absl::Status s = dumper.Dump(value, 0, out); !s.ok()) return s;
  return out;
}

}  // namespace tessera::jinja
