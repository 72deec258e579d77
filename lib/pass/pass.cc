#include "pass/pass.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace asrc::pass {

namespace {

std::string TypeName(const nlohmann::json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array of strings";
  return "a value";
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

}  // namespace

Result<nlohmann::json> ValidateOptions(const std::vector<OptionSpec>& specs,
                                       const nlohmann::json& given, const std::string& path) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& s : specs) out[s.name] = s.default_value;
  if (given.is_null()) return out;
  if (!given.is_object()) return Error(path + ": expected an object of options");
  for (auto it = given.begin(); it != given.end(); ++it) {
    const std::string key_path = path + "." + it.key();
    auto spec = std::find_if(specs.begin(), specs.end(),
                             [&](const OptionSpec& s) { return s.name == it.key(); });
    if (spec == specs.end()) {
      std::vector<std::string> names;
      for (const auto& s : specs) names.push_back(s.name);
      return Error(key_path + ": unknown option (known: " + Join(names) + ")");
    }
    const nlohmann::json& def = spec->default_value;
    const nlohmann::json& v = it.value();
    bool ok = false;
    if (def.is_boolean()) ok = v.is_boolean();
    else if (def.is_number_integer()) ok = v.is_number_integer() ||
                                            (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    else if (def.is_number()) ok = v.is_number();
    else if (def.is_string()) ok = v.is_string();
    else if (def.is_array()) {
      ok = v.is_array() && std::all_of(v.begin(), v.end(), [](const nlohmann::json& e) {
             return e.is_string();
           });
    }
    if (!ok) return Error(key_path + ": expected " + TypeName(def));
    nlohmann::json value = v;
    // A float beyond int64 (1e107) would make the cast undefined: out of range instead.
    if (def.is_number_integer() && v.is_number_float() && !(std::fabs(v.get<double>()) < 9.0e18))
      return Error(key_path + ": " + v.dump() + " is out of range");
    if (def.is_number_integer()) value = v.is_number_float() ? nlohmann::json(static_cast<int64_t>(v.get<double>())) : v;
    if (def.is_number()) {
      double d = value.get<double>();
      if (!std::isfinite(d) || d < spec->min || d > spec->max) {
        std::ostringstream os;
        os << key_path << ": " << v.dump() << " is out of range [" << spec->min << ", " << spec->max
           << "]";
        return Error(os.str());
      }
    }
    if (!spec->choices.empty()) {
      std::vector<std::string> vals;
      if (value.is_string()) vals.push_back(value.get<std::string>());
      if (value.is_array()) vals = value.get<std::vector<std::string>>();
      for (const auto& s : vals) {
        if (std::find(spec->choices.begin(), spec->choices.end(), s) == spec->choices.end()) {
          return Error(key_path + ": '" + s + "' is not one of: " + Join(spec->choices));
        }
      }
    }
    out[it.key()] = value;
  }
  return out;
}

void PassRegistry::Register(const std::string& name, Factory factory) {
  table_[name] = std::move(factory);
}

std::unique_ptr<Pass> PassRegistry::Create(const std::string& name) const {
  auto it = table_.find(name);
  if (it == table_.end()) return nullptr;
  return it->second();
}

std::vector<std::string> PassRegistry::Names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : table_) out.push_back(k);
  return out;
}

bool GlobMatch(const std::string& pattern, const std::string& text) {
  size_t p = 0, t = 0, star = std::string::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool AnyGlobMatch(const std::vector<std::string>& patterns, const std::string& text) {
  for (const auto& p : patterns) {
    if (GlobMatch(p, text)) return true;
  }
  return false;
}

}  // namespace asrc::pass
