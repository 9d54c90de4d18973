// Renders templates for differential checks against Python Jinja2.
// Reads JSON lines {"template": str, "context": object} on stdin and writes
// one JSON line per input: {"rendered": str} or {"error": str}. Used by
// jinja_diff.py to compare with Python Jinja2.
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/jinja/chat_template.h"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    nlohmann::ordered_json in = nlohmann::ordered_json::parse(line, nullptr, false);
    nlohmann::json out = nlohmann::json::object();
    if (in.is_discarded() || !in.is_object()) {
      out["error"] = "bad input line";
    } else {
      auto tmpl = tessera::jinja::ChatTemplate::Parse(in.value("template", ""));
      if (!tmpl.ok()) {
        out["error"] = std::string(tmpl.status().message());
      } else {
        auto r = tmpl->Render(in.value("context", nlohmann::ordered_json::object()));
        if (r.ok()) {
          out["rendered"] = *r;
        } else {
          out["error"] = std::string(r.status().message());
        }
      }
    }
    std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return 0;
}
