#pragma once
// controller/: command-line flags the way Matchbox (Go's flag package) takes
// them, so existing units keep working: "-flag=value", "-flag value",
// "--flag", boolean "-flag"; each flag may also come from environment
// variables (e.g. MATCHBOX_ADDRESS); the command line wins.

#include <map>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "controller/commands.h"

namespace ironboot::controller {

class FlagSet {
 public:
  explicit FlagSet(std::string command) : command_(std::move(command)) {}

  // Declares a string flag. `env` lists environment variables consulted when
  // the flag is not on the command line. `repeated` flags collect every value.
  void String(const std::string& name, std::string default_value, std::string help,
              std::vector<std::string> env = {}, bool repeated = false);
  // Declares a boolean flag: "-name" or "-name=true|false".
  void Bool(const std::string& name, std::string help, std::vector<std::string> env = {});

  // Parses `args`; kInvalid naming the flag on an unknown flag or a missing
  // value. Positional arguments are kept in order.
  Result<void> Parse(Args args);

  const std::string& Get(const std::string& name) const;
  // The value, or nullopt when it is empty.
  std::optional<std::string> GetOptional(const std::string& name) const {
    return Get(name).empty() ? std::nullopt : std::optional<std::string>(Get(name));
  }
  const std::vector<std::string>& GetAll(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  // True when the flag came from the command line, the environment or a config file.
  bool IsSet(const std::string& name) const;

  // Applies a YAML config file whose top-level keys are flag names
  // ("repo: git://...", "interval: 30s"); values apply only to flags the
  // command line and environment left unset. kInvalid naming the file and key
  // for an unknown key or a value that is not a scalar (or a list, for
  // repeated flags).
  Result<void> ApplyConfigFile(const std::string& path);
  const std::vector<std::string>& positional() const { return positional_; }

  // The --help text: every flag with its default and environment variables.
  std::string Usage(const std::string& synopsis) const;

 private:
  struct Flag {
    std::string value;
    std::vector<std::string> values;
    std::string default_value;
    std::string help;
    std::vector<std::string> env;
    bool is_bool = false;
    bool repeated = false;
    bool set = false;
  };
  std::string command_;
  std::map<std::string, Flag> flags_;
  std::vector<std::string> order_;
  std::vector<std::string> positional_;
};

// A duration flag: "10s", "500ms", "2m", "1h", or plain seconds. kInvalid
// naming the command and flag otherwise.
Result<std::chrono::milliseconds> ParseFlagDuration(const std::string& command, const std::string& flag,
                                                   const std::string& text);

}  // namespace ironboot::controller
