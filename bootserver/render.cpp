#include "bootserver/render.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <vector>

namespace ironboot::bootserver {
using nlohmann::json;

const std::string_view kChainloadScript =
    "#!ipxe\n"
    "chain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}&hostname=${hostname}&serial=${serial}"
    "&arch=${buildarch:uristring}\n";

std::string IpxeScript(const Profile& p) {
  if (p.local_boot) {
    return "#!ipxe\n# installed: boot from the local disk\nexit\n";
  }
  std::string out = "#!ipxe\nkernel ";
  out += p.kernel;
  for (const auto& arg : p.args) {
    out += ' ';
    out += arg;
  }
  out += '\n';
  for (const auto& initrd : p.initrd) {
    out += "initrd ";
    out += initrd;
    out += '\n';
  }
  out += "boot\n";
  return out;
}

std::string GrubConfig(const Profile& p) {
  if (p.local_boot) {
    return "exit\n";
  }
  std::string out = "default=0\nfallback=1\ntimeout=1\n";
  auto entry = [&](const char* title, const char* linux_cmd, const char* initrd_cmd) {
    out += "menuentry \"CoreOS (";
    out += title;
    out += ")\" {\necho \"Loading kernel\"\n";
    out += linux_cmd;
    out += " \"" + p.kernel + "\"";
    for (const auto& arg : p.args) {
      out += ' ';
      out += arg;
    }
    out += "\necho \"Loading initrd\"\n";
    out += initrd_cmd;
    out += ' ';
    for (const auto& initrd : p.initrd) {
      out += " \"" + initrd + "\"";
    }
    out += "\n}\n";
  };
  entry("EFI", "linuxefi", "initrdefi");
  entry("BIOS", "linux", "initrd");
  return out;
}

json CollectVariables(const Group& group, const Labels& labels, std::string_view raw_query) {
  json data = json::object();
  if (group.metadata.is_object()) {
    data = group.metadata;
  }
  for (const auto& [k, v] : group.selector) {
    std::string key = k;
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    data[key] = v;
  }
  json query = json::object();
  for (const auto& [k, v] : labels) {
    query[k] = v;
  }
  data["request"] = json{{"query", query}, {"raw_query", std::string(raw_query)}};
  return data;
}

namespace {

// Go's %v of a float64, as encoding/json gives JSON numbers to Matchbox.
std::string GoNumber(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e21) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

void Flatten(const json& node, const std::string& prefix, std::vector<std::string>& lines) {
  for (const auto& [key, value] : node.items()) {
    std::string name = prefix + key;
    if (value.is_string()) {
      lines.push_back(Upper(name) + "=" + value.get<std::string>());
    } else if (value.is_boolean()) {
      lines.push_back(Upper(name) + "=" + (value.get<bool>() ? "true" : "false"));
    } else if (value.is_number()) {
      lines.push_back(Upper(name) + "=" + GoNumber(value.get<double>()));
    } else if (value.is_object()) {
      Flatten(value, name + "_", lines);
    }
    // Lists and nulls are skipped, as in Matchbox.
  }
}

// Go's default formatting of a template value.
std::string GoValue(const json& v) {
  if (v.is_string()) {
    return v.get<std::string>();
  }
  if (v.is_boolean()) {
    return v.get<bool>() ? "true" : "false";
  }
  if (v.is_number()) {
    return GoNumber(v.get<double>());
  }
  if (v.is_null()) {
    return "<no value>";
  }
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      out += (i ? " " : "") + GoValue(v[i]);
    }
    return out + "]";
  }
  std::string out = "map[";
  bool first = true;
  for (const auto& [k, item] : v.items()) {
    out += (first ? "" : " ") + k + ":" + GoValue(item);
    first = false;
  }
  return out + "]";
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::string MetadataEnv(const json& variables) {
  std::vector<std::string> lines;
  Flatten(variables, "", lines);
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& line : lines) {
    out += line;
    out += '\n';
  }
  return out;
}

Result<std::string> RenderTemplate(std::string_view tmpl, const json& variables) {
  std::string out;
  size_t pos = 0;
  while (pos < tmpl.size()) {
    size_t open = tmpl.find("{{", pos);
    if (open == std::string_view::npos) {
      out.append(tmpl.substr(pos));
      break;
    }
    size_t close = tmpl.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return Fail(ErrorCode::kInvalid, "unclosed action \"{{\" at byte " + std::to_string(open));
    }
    std::string_view text = tmpl.substr(pos, open - pos);
    std::string_view action = tmpl.substr(open + 2, close - open - 2);
    bool trim_left = action.size() >= 2 && action[0] == '-' && IsSpace(action[1]);
    bool trim_right = action.size() >= 2 && action.back() == '-' && IsSpace(action[action.size() - 2]);
    if (trim_left) {
      action.remove_prefix(1);
      while (!text.empty() && IsSpace(text.back())) {
        text.remove_suffix(1);
      }
    }
    if (trim_right) {
      action.remove_suffix(1);
    }
    out.append(text);
    while (!action.empty() && IsSpace(action.front())) {
      action.remove_prefix(1);
    }
    while (!action.empty() && IsSpace(action.back())) {
      action.remove_suffix(1);
    }
    if (action.empty() || action[0] != '.') {
      return Fail(ErrorCode::kInvalid, "unsupported template action \"{{" + std::string(action) +
                                           "}}\" (only field lookups like {{.key}} are supported)");
    }
    const json* node = &variables;
    std::string_view path = action.substr(1);
    std::string walked;
    while (!path.empty()) {
      size_t dot = path.find('.');
      std::string key(path.substr(0, dot));
      path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
      walked += "." + key;
      if (!node->is_object() || !node->contains(key)) {
        return Fail(ErrorCode::kNotFound, "map has no entry for key \"" + key + "\" (in " + walked + ")");
      }
      node = &(*node)[key];
    }
    out += GoValue(*node);
    pos = close + 2;
    if (trim_right) {
      while (pos < tmpl.size() && IsSpace(tmpl[pos])) {
        ++pos;
      }
    }
  }
  return out;
}

}  // namespace ironboot::bootserver
