#include "tests/testutil/git.h"

#include <signal.h>

#include <chrono>

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

GitDaemon::GitDaemon(std::filesystem::path base, int port) : base_(std::move(base)), port_(port) {
  Start();
}

GitDaemon::~GitDaemon() {
  if (process_) {
    Kill();
  }
}

void GitDaemon::Start() {
  static const std::string exec_path = Git("/", {"--exec-path"});
  process_ = std::make_unique<Process>(
      std::vector<std::string>{exec_path + "/git-daemon", "--reuseaddr",
                               "--base-path=" + base_.string(), "--export-all",
                               "--listen=127.0.0.1", "--port=" + std::to_string(port_),
                               base_.string()},
      GitEnv());
  EXPECT_TRUE(WaitFor([&] { return Accepts(port_); })) << process_->Output();
}

void GitDaemon::Kill() {
  kill(-process_->pid(), SIGKILL);  // its process group: the daemon and its children
  process_->Wait(std::chrono::seconds(5));
  process_.reset();
  EXPECT_TRUE(WaitFor([&] { return !Accepts(port_); }));
}

std::string GitDaemon::Url(const std::string& repo) const {
  return "git://127.0.0.1:" + std::to_string(port_) + "/" + repo;
}

}  // namespace ironboot::testutil
