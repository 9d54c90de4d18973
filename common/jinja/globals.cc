// Global functions of the template environment: Jinja2's range, dict and
// namespace, and transformers' raise_exception and strftime_now.
#include <cmath>
#include <ctime>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/access.h"
#include "common/jinja/args.h"
#include "common/jinja/builtins.h"
#include "common/jinja/interpreter.h"
#include "common/jinja/objects.h"
#include "common/status_macros.h"

namespace tessera::jinja {
namespace {

// Jinja2's sandbox refuses ranges longer than this (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

absl::StatusOr<Value> Range(CallArgs& args, Renderer&) {
  if (!args.kwargs.empty()) return absl::InvalidArgumentError("range() takes no keyword arguments");
  if (args.args.empty() || args.args.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("range expected at most 3 arguments, got ", args.args.size()));
  }
  int64_t v[3] = {0, 0, 1};
  for (size_t i = 0; i < args.args.size(); ++i) {
    if (!args.args[i].is_integral()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", args.args[i].TypeName(), "' object cannot be interpreted as an integer"));
    }
  }
  if (args.args.size() == 1) {
    v[1] = args.args[0].integral();
  } else {
    v[0] = args.args[0].integral();
    v[1] = args.args[1].integral();
    if (args.args.size() == 3) v[2] = args.args[2].integral();
  }
  const int64_t start = v[0], stop = v[1], step = v[2];
  if (step == 0) return absl::InvalidArgumentError("range() arg 3 must not be zero");
  const double len =
      step > 0 ? (stop > start ? std::ceil((static_cast<double>(stop) - start) / step) : 0)
               : (stop < start
                      ? std::ceil((static_cast<double>(start) - stop) / -static_cast<double>(step))
                      : 0);
  if (len > kMaxRange) {
    return absl::InvalidArgumentError(
        "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(len));
  for (int64_t i = 0; i < static_cast<int64_t>(len); ++i)
    out.push_back(Value::Int(start + i * step));
  return Value::List(std::move(out));
}

// dict(mapping_or_pairs?, **kwargs) into `out`.
absl::Status FillDict(const CallArgs& args, const char* fn, Dict& out) {
  if (args.args.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(fn, " expected at most 1 argument, got ", args.args.size()));
  }
  if (args.args.size() == 1) {
    const Value& src = args.args[0];
    if (src.is_dict()) {
      for (const auto& [k, v] : src.dict().entries()) out.Set(k, v);
    } else {
      ASSIGN_OR_RETURN(std::vector<Value> pairs, Iterate(src));
      for (const Value& p : pairs) {
        ASSIGN_OR_RETURN(std::vector<Value> kv, Iterate(p));
        if (kv.size() != 2) {
          return absl::InvalidArgumentError(absl::StrCat(
              "dictionary update sequence element has length ", kv.size(), "; 2 is required"));
        }
        out.Set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [k, v] : args.kwargs) out.Set(Value::String(k), v);
  return absl::OkStatus();
}

absl::StatusOr<Value> MakeDict(CallArgs& args, Renderer&) {
  auto d = std::make_shared<Dict>();
  RETURN_IF_ERROR(FillDict(args, "dict", *d));
  return Value::FromDict(std::move(d));
}

absl::StatusOr<Value> MakeNamespace(CallArgs& args, Renderer& renderer) {
  Dict d;
  RETURN_IF_ERROR(FillDict(args, "namespace", d));
  auto ns = std::make_shared<Namespace>();
  renderer.TrackNamespace(ns);
  for (const auto& [k, v] : d.entries()) {
    if (!k.is_string()) return absl::InvalidArgumentError("namespace() keywords must be strings");
    ns->SetAttr(k.str(), v);
  }
  return Value::FromObject(std::move(ns));
}

absl::StatusOr<Value> RaiseException(CallArgs& args, Renderer& renderer) {
  ASSIGN_OR_RETURN(auto a, BindArgs("raise_exception", args, {{"message", std::nullopt}}));
  renderer.MarkRaised();
  return absl::InvalidArgumentError(a[0].Str());
}

absl::StatusOr<Value> StrftimeNow(CallArgs& args, Renderer&) {
  ASSIGN_OR_RETURN(auto a, BindArgs("strftime_now", args, {{"format", std::nullopt}}));
  ASSIGN_OR_RETURN(std::string format, StrArg(a[0], "strftime_now format"));
  if (format.size() > 1024)
    return absl::InvalidArgumentError("strftime_now format longer than 1024 bytes");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  std::string buf(format.size() * 64 + 64, '\0');
  // A leading space keeps a zero return unambiguous (empty result vs error).
  const size_t n = std::strftime(buf.data(), buf.size(), (" " + format).c_str(), &tm);
  if (n == 0) return absl::InvalidArgumentError("strftime_now: formatted time too long");
  return Value::String(buf.substr(1, n - 1));
}

const absl::flat_hash_map<std::string, Value>& Globals() {
  static const auto* globals = [] {
    auto* g = new absl::flat_hash_map<std::string, Value>();
    auto add = [&](const char* name, NativeFn fn) {
      (*g)[name] = Value::FromObject(std::make_shared<BuiltinFunction>(name, std::move(fn)));
    };
    add("range", Range);
    add("dict", MakeDict);
    add("namespace", MakeNamespace);
    add("raise_exception", RaiseException);
    add("strftime_now", StrftimeNow);
    return g;
  }();
  return *globals;
}

}  // namespace

const Value* FindGlobal(absl::string_view name) {
  const auto& g = Globals();
  auto it = g.find(name);
  return it == g.end() ? nullptr : &it->second;
}

}  // namespace tessera::jinja
