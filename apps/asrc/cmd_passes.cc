// asrc passes [--json]: every compression pass with its options, defaults and descriptions.
#include <iostream>
#include <memory>

#include "commands.h"
#include "pass/pipeline.h"
#include "passes/registry.h"

namespace asrc::app {

void AddPassesCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("passes", "List compression passes with their options and defaults");
  auto json_out = std::make_shared<bool>(false);
  sub->add_flag("--json", *json_out, "Print as JSON");
  set.add(sub, [json_out]() {
    const auto& reg = passes::BuiltinPasses();
    nlohmann::json all = nlohmann::json::array();
    for (const auto& name : reg.Names()) {
      auto p = reg.Create(name);
      nlohmann::json j = {{"name", name}, {"description", p->description()}};
      nlohmann::json opts = nlohmann::json::array();
      for (const auto& o : p->options()) {
        nlohmann::json oj = {{"name", o.name}, {"default", o.default_value}, {"description", o.description}};
        if (!o.choices.empty()) oj["choices"] = o.choices;
        opts.push_back(oj);
      }
      j["options"] = opts;
      all.push_back(j);
    }
    if (*json_out) {
      std::cout << all.dump(2) << "\n";
      return 0;
    }
    for (const auto& p : all) {
      std::cout << p["name"].get<std::string>() << " — " << p["description"].get<std::string>() << "\n";
      for (const auto& o : p["options"]) {
        std::cout << "    " << o["name"].get<std::string>() << " = " << o["default"].dump();
        if (o.contains("choices")) {
          std::cout << "  (";
          bool first = true;
          for (const auto& c : o["choices"]) {
            std::cout << (first ? "" : " | ") << c.get<std::string>();
            first = false;
          }
          std::cout << ")";
        }
        std::cout << "\n        " << o["description"].get<std::string>() << "\n";
      }
      std::cout << "\n";
    }
    std::cout << "Pipeline JSON: {\"passes\": [\"cleanup\", {\"pass\": \"quantize-int8\", \"options\": "
                 "{\"mode\": \"dynamic\"}}], \"eval\": {...}, \"gates\": {...}} — see lib/pass/pipeline.h\n";
    return 0;
  });
}

}  // namespace asrc::app
