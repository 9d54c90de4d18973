// Helpers of the OpenAI request tests: parse a body that must parse (or
// fail), and minimal chat / completion bodies with extra fields spliced in.
// Header-only; for tests/router/openai_*_test.cc.
#pragma once

#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "router/openai/api_error.h"
#include "router/openai/request.h"

namespace tessera::router::openai::request_testing {

using Json = nlohmann::ordered_json;

inline ParsedRequest MustParse(Endpoint e, const Json& body, const ParseOptions& options = {}) {
  ApiOr<ParsedRequest> r = ParseRequest(e, body.dump(), options);
  EXPECT_TRUE(r.ok()) << body.dump() << " -> " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *std::move(r) : ParsedRequest{};
}

inline ApiError MustFail(Endpoint e, const std::string& body) {
  ApiOr<ParsedRequest> r = ParseRequest(e, body);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? ApiError{} : r.error();
}

inline Json Chat(Json extra = Json::object()) {
  Json body = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

inline Json Completion(Json extra = Json::object()) {
  Json body = {{"model", "m"}, {"prompt", "Once upon"}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

}  // namespace tessera::router::openai::request_testing
