#include "common/jinja/args.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tessera::jinja {

absl::StatusOr<std::vector<Value>> BindArgs(absl::string_view fn, const CallArgs& args,
                                            std::initializer_list<Param> params) {
  if (args.args.size() > params.size()) {
    return absl::InvalidArgumentError(absl::StrCat(fn, "() takes at most ", params.size(),
                                                   " argument(s) (", args.args.size(), " given)"));
  }
  std::vector<std::optional<Value>> bound(params.size());
  for (size_t i = 0; i < args.args.size(); ++i) bound[i] = args.args[i];
  for (const auto& [key, value] : args.kwargs) {
    size_t i = 0;
    for (const Param& p : params) {
      if (p.name == key) break;
      ++i;
    }
    if (i == params.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(fn, "() got an unexpected keyword argument '", key, "'"));
    }
    if (bound[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat(fn, "() got multiple values for argument '", key, "'"));
    }
    bound[i] = value;
  }
  std::vector<Value> out;
  out.reserve(params.size());
  size_t i = 0;
  for (const Param& p : params) {
    if (bound[i]) {
      out.push_back(*bound[i]);
    } else if (p.default_value) {
      out.push_back(*p.default_value);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(fn, "() missing required argument '", p.name, "'"));
    }
    ++i;
  }
  return out;
}

absl::StatusOr<int64_t> IntArg(const Value& v, absl::string_view what) {
  if (v.is_integral()) return v.integral();
  if (v.is_undefined()) return absl::InvalidArgumentError(v.UndefinedMessage());
  return absl::InvalidArgumentError(
      absl::StrCat(what, " must be an integer, not '", v.TypeName(), "'"));
}

absl::StatusOr<std::string> StrArg(const Value& v, absl::string_view what) {
  if (v.is_string()) return v.str();
  if (v.is_undefined()) return absl::InvalidArgumentError(v.UndefinedMessage());
  return absl::InvalidArgumentError(
      absl::StrCat(what, " must be a string, not '", v.TypeName(), "'"));
}

}  // namespace tessera::jinja
