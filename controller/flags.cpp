#include "controller/flags.h"

#include "common/duration.h"

#include <cstdlib>

#include <yaml-cpp/yaml.h>

namespace ironboot::controller {

void FlagSet::String(const std::string& name, std::string default_value, std::string help,
                     std::vector<std::string> env, bool repeated) {
  Flag f;
  f.value = default_value;
  f.default_value = std::move(default_value);
  f.help = std::move(help);
  f.env = std::move(env);
  f.repeated = repeated;
  flags_[name] = std::move(f);
  order_.push_back(name);
}

void FlagSet::Bool(const std::string& name, std::string help, std::vector<std::string> env) {
  Flag f;
  f.value = "false";
  f.default_value = "false";
  f.help = std::move(help);
  f.env = std::move(env);
  f.is_bool = true;
  flags_[name] = std::move(f);
  order_.push_back(name);
}

Result<void> FlagSet::Parse(Args args) {
  std::map<std::string, bool> from_cli;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional_.insert(positional_.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional_.push_back(arg);
      continue;
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    std::optional<std::string> value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    auto it = flags_.find(body);
    if (it == flags_.end()) {
      return Fail(ErrorCode::kInvalid, command_ + ": unknown flag \"" + arg +
                                           "\" (see 'ironboot " + command_ + " --help')");
    }
    Flag& f = it->second;
    if (f.is_bool) {
      if (!value) {
        value = "true";
      }
      if (*value != "true" && *value != "false" && *value != "1" && *value != "0") {
        return Fail(ErrorCode::kInvalid, command_ + ": flag -" + body + ": want true or false, got \"" +
                                             *value + "\"");
      }
      f.value = (*value == "true" || *value == "1") ? "true" : "false";
    } else {
      if (!value) {
        if (i + 1 >= args.size()) {
          return Fail(ErrorCode::kInvalid, command_ + ": flag -" + body + " needs a value");
        }
        value = args[++i];
      }
      if (f.repeated) {
        if (!from_cli[body]) {
          f.values.clear();
        }
        f.values.push_back(*value);
      }
      f.value = *value;
    }
    f.set = true;
    from_cli[body] = true;
  }
  for (auto& [name, f] : flags_) {
    if (from_cli[name]) {
      continue;
    }
    for (const auto& env : f.env) {
      if (const char* v = std::getenv(env.c_str())) {
        f.value = v;
        if (f.is_bool) {
          f.value = (f.value == "true" || f.value == "1") ? "true" : "false";
        }
        if (f.repeated) {
          f.values = {v};
        }
        f.set = true;
        break;
      }
    }
  }
  return {};
}

const std::string& FlagSet::Get(const std::string& name) const { return flags_.at(name).value; }

const std::vector<std::string>& FlagSet::GetAll(const std::string& name) const {
  return flags_.at(name).values;
}

bool FlagSet::GetBool(const std::string& name) const { return flags_.at(name).value == "true"; }

Result<void> FlagSet::ApplyConfigFile(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return Fail(ErrorCode::kNotFound, command_ + ": config file " + path + " cannot be read");
  } catch (const YAML::Exception& e) {
    return Fail(ErrorCode::kInvalid, command_ + ": config file " + path + ":" +
                                         std::to_string(e.mark.line + 1) + ":" +
                                         std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (root.IsNull()) {
    return {};
  }
  if (!root.IsMap()) {
    return Fail(ErrorCode::kInvalid, command_ + ": config file " + path +
                                         ": want a map of flag names to values");
  }
  for (const auto& item : root) {
    std::string key = item.first.as<std::string>();
    auto where = path + ":" + std::to_string(item.first.Mark().line + 1) + ": ";
    auto it = flags_.find(key);
    if (it == flags_.end() || key == "config" || key == "help" || key == "version") {
      return Fail(ErrorCode::kInvalid, command_ + ": config file " + where + "unknown key \"" + key +
                                           "\" (want a flag name of 'ironboot " + command_ +
                                           " --help', without the dash)");
    }
    Flag& f = it->second;
    if (f.set) {
      continue;  // the command line or environment wins
    }
    const YAML::Node& value = item.second;
    if (value.IsSequence() && f.repeated) {
      f.values.clear();
      for (const auto& v : value) {
        f.values.push_back(v.as<std::string>());
      }
      f.value = f.values.empty() ? "" : f.values.back();
    } else if (value.IsScalar()) {
      f.value = value.as<std::string>();
      if (f.is_bool) {
        f.value = (f.value == "true" || f.value == "1") ? "true" : "false";
      }
      if (f.repeated) {
        f.values = {f.value};
      }
    } else {
      return Fail(ErrorCode::kInvalid, command_ + ": config file " + where + "key \"" + key +
                                           "\": want a single value");
    }
    f.set = true;
  }
  return {};
}

bool FlagSet::IsSet(const std::string& name) const { return flags_.at(name).set; }

std::string FlagSet::Usage(const std::string& synopsis) const {
  std::string out = "usage: " + synopsis + "\n\nflags:\n";
  for (const auto& name : order_) {
    const Flag& f = flags_.at(name);
    out += "  -" + name + (f.is_bool ? "" : " value") + "\n        " + f.help;
    if (!f.is_bool && !f.default_value.empty()) {
      out += " (default \"" + f.default_value + "\")";
    }
    for (const auto& env : f.env) {
      out += " [$" + env + "]";
    }
    out += "\n";
  }
  return out;
}

// "10s", "500ms", "2m", or plain seconds.
Result<std::chrono::milliseconds> ParseFlagDuration(const std::string& command, const std::string& flag,
                                                   const std::string& text) {
  auto d = ParseDuration(text);
  if (!d) {
    return Fail(ErrorCode::kInvalid, command + ": flag -" + flag + ": \"" + text +
                                         "\" is not a duration (want e.g. 500ms, 10s, 2m)");
  }
  return *d;
}

}  // namespace ironboot::controller
