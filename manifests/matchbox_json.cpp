#include "manifests/matchbox_json.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "manifests/values.h"

namespace ironboot::manifests {
namespace {

using nlohmann::json;

Position PositionOf(const std::string& path, const std::string& content, size_t byte) {
  int line = 1;
  int column = 1;
  for (size_t i = 0; i < byte && i < content.size(); ++i) {
    if (content[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return Position{path, line, column};
}

std::expected<json, Diagnostic> ParseObject(const std::string& path, const std::string& content) {
  try {
    json j = json::parse(content);
    if (!j.is_object()) {
      return std::unexpected(
          Diagnostic{Severity::kError, Position{path, 1, 1}, "", "want a JSON object"});
    }
    return j;
  } catch (const json::parse_error& e) {
    // e.byte is 1-based and points just past the offending character.
    size_t at = e.byte > 0 ? e.byte - 1 : 0;
    std::string what = e.what();
    auto colon = what.rfind(": ");
    return std::unexpected(Diagnostic{
        Severity::kError, PositionOf(path, content, at), "",
        "JSON syntax error: " + (colon == std::string::npos ? what : what.substr(colon + 2))});
  }
}

// A string member; empty when absent. Errors if present but not a string.
std::expected<std::string, Diagnostic> StringField(const std::string& path, const json& j,
                                                   const std::string& field) {
  const json* at = &j;
  std::string name = field;
  if (auto dot = field.find('.'); dot != std::string::npos) {
    if (!j.contains(field.substr(0, dot))) {
      return std::string();
    }
    at = &j.at(field.substr(0, dot));
    name = field.substr(dot + 1);
  }
  if (!at->is_object() || !at->contains(name) || at->at(name).is_null()) {
    return std::string();
  }
  if (!at->at(name).is_string()) {
    return std::unexpected(Diagnostic{Severity::kError, Position{path, 0, 0}, field,
                                      "want a string, got " + JsonText(at->at(name))});
  }
  return at->at(name).get<std::string>();
}

}  // namespace

std::expected<bootserver::Group, Diagnostic> ParseMatchboxGroup(const std::string& path,
                                                                const std::string& content) {
  auto j = ParseObject(path, content);
  if (!j) {
    return std::unexpected(j.error());
  }
  bootserver::Group g;
  g.source = path;
  for (auto [field, out] :
       {std::pair{"id", &g.id}, std::pair{"name", &g.name}, std::pair{"profile", &g.profile}}) {
    auto s = StringField(path, *j, field);
    if (!s) {
      return std::unexpected(s.error());
    }
    *out = *s;
  }
  if (g.id.empty()) {
    return std::unexpected(
        Diagnostic{Severity::kError, Position{path, 0, 0}, "id", "required field is missing"});
  }
  if (j->contains("selector")) {
    const json& sel = j->at("selector");
    if (!sel.is_object()) {
      return std::unexpected(Diagnostic{Severity::kError, Position{path, 0, 0}, "selector",
                                        "want an object of strings"});
    }
    for (const auto& [k, v] : sel.items()) {
      if (!v.is_string()) {
        return std::unexpected(Diagnostic{Severity::kError, Position{path, 0, 0}, "selector." + k,
                                          "want a string, got " + JsonText(v)});
      }
      std::string value = v.get<std::string>();
      if (k == "mac") {
        auto mac = ParseMac(value);
        if (!mac) {
          return std::unexpected(
              Diagnostic{Severity::kError, Position{path, 0, 0}, "selector.mac",
                         Quote(value) + " is not a MAC address (" + mac.error().reason + ")"});
        }
        value = *mac;
      }
      g.selector[k] = value;
    }
  }
  if (j->contains("metadata")) {
    g.metadata = j->at("metadata");
  }
  return g;
}

std::expected<bootserver::Profile, Diagnostic> ParseMatchboxProfile(const std::string& path,
                                                                    const std::string& content) {
  auto j = ParseObject(path, content);
  if (!j) {
    return std::unexpected(j.error());
  }
  bootserver::Profile p;
  p.source = path;
  for (auto [field, out] :
       {std::pair{"id", &p.id}, std::pair{"name", &p.name}, std::pair{"generic_id", &p.generic_id},
        std::pair{"boot.kernel", &p.kernel}}) {
    auto s = StringField(path, *j, field);
    if (!s) {
      return std::unexpected(s.error());
    }
    *out = *s;
  }
  if (p.id.empty()) {
    return std::unexpected(
        Diagnostic{Severity::kError, Position{path, 0, 0}, "id", "required field is missing"});
  }
  if (j->contains("boot") && j->at("boot").is_object()) {
    for (auto [field, out] : {std::pair{"initrd", &p.initrd}, std::pair{"args", &p.args}}) {
      const json& boot = j->at("boot");
      if (!boot.contains(field) || boot.at(field).is_null()) {
        continue;
      }
      const json& list = boot.at(field);
      if (!list.is_array()) {
        return std::unexpected(Diagnostic{Severity::kError, Position{path, 0, 0},
                                          std::string("boot.") + field, "want a list of strings"});
      }
      for (const auto& item : list) {
        if (!item.is_string()) {
          return std::unexpected(Diagnostic{Severity::kError, Position{path, 0, 0},
                                            std::string("boot.") + field,
                                            "want a list of strings, got " + JsonText(item)});
        }
        out->push_back(item.get<std::string>());
      }
    }
  }
  return p;
}

std::string GroupToJson(const bootserver::Group& group) {
  json j = json::object();
  j["id"] = group.id;
  if (!group.name.empty()) {
    j["name"] = group.name;
  }
  j["profile"] = group.profile;
  if (!group.selector.empty()) {
    j["selector"] = group.selector;
  }
  if (!group.metadata.empty()) {
    j["metadata"] = group.metadata;
  }
  return JsonText(j, 4) + "\n";
}

std::string ProfileToJson(const bootserver::Profile& profile) {
  json j = json::object();
  j["id"] = profile.id;
  if (!profile.name.empty()) {
    j["name"] = profile.name;
  }
  json boot = json::object();
  boot["kernel"] = profile.kernel;
  boot["initrd"] = profile.initrd;
  boot["args"] = profile.args;
  j["boot"] = boot;
  if (!profile.generic_id.empty()) {
    j["generic_id"] = profile.generic_id;
  }
  return JsonText(j, 4) + "\n";
}

}  // namespace ironboot::manifests
