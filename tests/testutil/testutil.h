#pragma once
// tests/testutil: helpers shared by all tests: temp dirs, files, child
// processes (git daemon, the ironboot binary), a real HTTP client, and
// polling with a deadline (never a bare sleep).

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ironboot::testutil {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

// Writes `content` to `path`, creating parent directories.
void WriteFile(const std::filesystem::path& path, const std::string& content);
std::string ReadFile(const std::filesystem::path& path);

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
};
// Runs `argv` (no shell), waits, returns exit code and output.
CommandResult Run(const std::vector<std::string>& argv,
                  const std::optional<std::filesystem::path>& cwd = std::nullopt,
                  const std::map<std::string, std::string>& env = {});
// Runs a shell command line with /bin/sh -c.
CommandResult Sh(const std::string& command_line);

// A child process running in the background; killed (SIGKILL) on destruction
// unless it already exited. Output goes to a file readable at any time.
class Process {
 public:
  Process(const std::vector<std::string>& argv,
          const std::map<std::string, std::string>& env = {},
          const std::optional<std::filesystem::path>& cwd = std::nullopt);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  int pid() const { return pid_; }
  // Everything the process wrote to stdout/stderr so far.
  std::string Output() const;
  // Sends a signal. Returns false if the process is gone.
  bool Signal(int sig);
  // Waits up to `timeout` for exit; returns the exit status (or 128+signal), or
  // nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  int pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path log_;
};

// Polls `pred` every 10 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& pred,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));

// True when a TCP connection to 127.0.0.1:port succeeds.
bool Accepts(int port);

// Returns a free TCP (or UDP) port on 127.0.0.1, for tools that cannot take port 0.
int FreePort(bool udp = false);

// A loopback /24 ("127.A.B") for a simulated fleet of this test process:
// A from the process id, B random, and TCP port 50000 free on .101-.112.
// Tests that run at once (ctest --parallel) then never share node addresses.
std::string UniqueLoopbackNet();

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  std::string error;  // non-empty when no response arrived
};
// A real HTTP/1.1 request over a fresh TCP connection to 127.0.0.1:port.
HttpResponse HttpRequest(int port, const std::string& method, const std::string& target,
                         const std::map<std::string, std::string>& headers = {},
                         const std::string& body = "");
// The same from a source address of the test's choosing (any 127.x.y.z), to
// act as another host.
HttpResponse HttpRequestFrom(const std::string& source, int port, const std::string& method,
                             const std::string& target,
                             const std::map<std::string, std::string>& headers = {},
                             const std::string& body = "");

// Raises this process's soft open-file limit to the hard one (tests that open
// thousands of sockets).
void RaiseFileLimit();

inline HttpResponse HttpGet(int port, const std::string& target,
                            const std::map<std::string, std::string>& headers = {}) {
  return HttpRequest(port, "GET", target, headers);
}
// A GET to 127.0.0.1:port from the loopback address `source` (e.g.
// "127.0.4.101"), as the machine with that address would send it.
HttpResponse HttpGetFrom(const std::string& source, int port, const std::string& target);

}  // namespace ironboot::testutil
