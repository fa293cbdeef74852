#pragma once
// tests/testutil: the git CLI for tests that build real repositories.

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ironboot::testutil {

// An environment with no user or system git config and a fixed identity.
const std::map<std::string, std::string>& GitEnv();

// Runs `git <args>` in `cwd` with GitEnv(); a non-zero exit is a test failure
// naming the command and its output. Returns the output without trailing newlines.
std::string Git(const std::filesystem::path& cwd, std::vector<std::string> args);

class Process;

// git-daemon serving the repositories under `base` on 127.0.0.1:port (run
// directly, not through the `git daemon` wrapper, so killing its process
// group stops it). Start() waits until the port accepts; Kill() until it
// no longer does; the destructor kills a running daemon.
class GitDaemon {
 public:
  GitDaemon(std::filesystem::path base, int port);
  ~GitDaemon();
  GitDaemon(const GitDaemon&) = delete;
  GitDaemon& operator=(const GitDaemon&) = delete;
  void Start();
  void Kill();
  // "git://127.0.0.1:<port>/<repo>".
  std::string Url(const std::string& repo) const;

 private:
  std::filesystem::path base_;
  int port_;
  std::unique_ptr<Process> process_;
};

}  // namespace ironboot::testutil
