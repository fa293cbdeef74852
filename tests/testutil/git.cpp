#include "tests/testutil/git.h"

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::testutil {

const std::map<std::string, std::string>& GitEnv() {
  static const std::map<std::string, std::string> env = {
      {"GIT_CONFIG_NOSYSTEM", "1"},
      {"GIT_CONFIG_GLOBAL", "/dev/null"},
      {"GIT_AUTHOR_NAME", "ironboot test"},
      {"GIT_AUTHOR_EMAIL", "test@ironboot.invalid"},
      {"GIT_COMMITTER_NAME", "ironboot test"},
      {"GIT_COMMITTER_EMAIL", "test@ironboot.invalid"},
      {"GIT_TERMINAL_PROMPT", "0"}};
  return env;
}

std::string Git(const std::filesystem::path& cwd, std::vector<std::string> args) {
  args.insert(args.begin(), "git");
  auto r = Run(args, cwd, GitEnv());
  if (r.exit_code != 0) {
    std::string line;
    for (const auto& a : args) {
      line += a + " ";
    }
    ADD_FAILURE() << line << "failed in " << cwd << ": " << r.output;
  }
  while (!r.output.empty() && r.output.back() == '\n') {
    r.output.pop_back();
  }
  return r.output;
}

}  // namespace ironboot::testutil
