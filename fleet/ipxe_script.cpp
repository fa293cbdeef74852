#include "fleet/ipxe_script.h"

#include <cctype>
#include <cstdio>
#include <sstream>

namespace ironboot::fleet {
namespace {

std::string UriString(std::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::string Setting(std::string name, const IpxeSettings& s) {
  std::string type;
  if (auto colon = name.find(':'); colon != std::string::npos) {
    type = name.substr(colon + 1);
    name = name.substr(0, colon);
  }
  if (auto slash = name.rfind('/'); slash != std::string::npos) {
    name = name.substr(slash + 1);  // net0/mac -> mac
  }
  std::string value;
  if (name == "mac") {
    value = s.mac;
    if (type == "hexhyp") {
      for (char& c : value) {
        if (c == ':') {
          c = '-';
        }
      }
      return value;
    }
    if (type == "hexraw") {
      std::string raw;
      for (char c : value) {
        if (c != ':') {
          raw += c;
        }
      }
      return raw;
    }
  } else if (name == "uuid") {
    value = s.uuid;
  } else if (name == "serial") {
    value = s.serial;
  } else if (name == "hostname") {
    value = s.hostname;
  } else if (name == "domain") {
    value = s.domain;
  } else if (name == "ip") {
    value = s.ip;
  } else if (name == "buildarch") {
    value = s.buildarch;
  }
  if (type == "uristring") {
    return UriString(value);
  }
  return value;
}

}  // namespace

std::string ExpandSettings(std::string_view text, const IpxeSettings& settings) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t end = text.find('}', i + 2);
      if (end != std::string_view::npos) {
        out += Setting(std::string(text.substr(i + 2, end - i - 2)), settings);
        i = end + 1;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

std::string ResolveUrl(std::string_view base, std::string_view ref) {
  if (ref.find("://") != std::string_view::npos) {
    return std::string(ref);
  }
  // base: scheme://authority/path?query
  size_t scheme_end = base.find("://");
  size_t authority_end = scheme_end == std::string_view::npos ? 0 : base.find('/', scheme_end + 3);
  if (authority_end == std::string_view::npos) {
    authority_end = base.find('?', scheme_end + 3);
    if (authority_end == std::string_view::npos) {
      authority_end = base.size();
    }
  }
  std::string origin(base.substr(0, authority_end));
  if (!ref.empty() && ref[0] == '/') {
    return origin + std::string(ref);
  }
  std::string_view path = base.substr(authority_end);
  path = path.substr(0, path.find('?'));
  size_t dir_end = path.rfind('/');
  std::string dir =
      dir_end == std::string_view::npos ? "/" : std::string(path.substr(0, dir_end + 1));
  return origin + dir + std::string(ref);
}

Result<std::vector<IpxeCommand>> ParseIpxeScript(std::string_view script,
                                                 std::string_view script_url) {
  std::vector<IpxeCommand> commands;
  std::istringstream in{std::string(script)};
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line_no == 1) {
      if (line.rfind("#!ipxe", 0) != 0) {
        return Fail(ErrorCode::kInvalid,
                    std::string(script_url) +
                        ": not an iPXE script (want first line \"#!ipxe\", got \"" +
                        line.substr(0, 64) + "\")");
      }
      continue;
    }
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word;) {
      w.push_back(word);
    }
    if (w.empty() || w[0][0] == '#' || w[0][0] == ':') {
      continue;
    }
    std::string cmd = w[0];
    IpxeCommand c;
    if (cmd == "kernel" || cmd == "imgfetch" || cmd == "module" || cmd == "initrd" ||
        cmd == "chain" || cmd == "chainload") {
      c.kind = (cmd == "kernel")                        ? IpxeCommand::Kind::kKernel
               : (cmd == "chain" || cmd == "chainload") ? IpxeCommand::Kind::kChain
                                                        : IpxeCommand::Kind::kInitrd;
      size_t k = 1;
      while (k < w.size() && w[k].rfind("--", 0) == 0) {
        ++k;  // --name x, --autofree, --replace, ...
        if (k < w.size() && (w[k - 1] == "--name" || w[k - 1] == "--timeout")) {
          ++k;
        }
      }
      if (k >= w.size()) {
        return Fail(ErrorCode::kInvalid, std::string(script_url) + ": line " +
                                             std::to_string(line_no) + ": \"" + cmd +
                                             "\" without a URL");
      }
      c.url = ResolveUrl(script_url, w[k]);
      c.args.assign(w.begin() + static_cast<long>(k) + 1, w.end());
      commands.push_back(std::move(c));
    } else if (cmd == "exit" || cmd == "sanboot") {
      c.kind = IpxeCommand::Kind::kExit;
      commands.push_back(std::move(c));
    } else if (cmd == "boot") {
      c.kind = IpxeCommand::Kind::kBoot;
      commands.push_back(std::move(c));
    }
  }
  if (line_no == 0) {
    return Fail(
        ErrorCode::kInvalid,
        std::string(script_url) + ": empty answer (want an iPXE script starting with \"#!ipxe\")");
  }
  return commands;
}

std::string KernelArg(const std::vector<std::string>& args, std::string_view name) {
  std::string prefix = std::string(name) + "=";
  for (const auto& a : args) {
    if (a.rfind(prefix, 0) == 0) {
      return a.substr(prefix.size());
    }
  }
  return "";
}

}  // namespace ironboot::fleet
