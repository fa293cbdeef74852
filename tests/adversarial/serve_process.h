#pragma once
// tests/adversarial: `ironboot serve` in Matchbox mode as a child process on
// 127.0.0.1, with a small data dir (one group, one profile) and optionally a
// large asset, for probes that need the real binary: its signal handling, its
// memory, its survival.

#include <filesystem>
#include <string>
#include <vector>

#include "tests/testutil/testutil.h"

namespace ironboot::adversarial {

class MatchboxServe {
 public:
  // Starts serve with `flags` added, and /assets/big.img of `asset_bytes`
  // (sparse: costs no disk) when > 0. Waits until /healthz answers.
  explicit MatchboxServe(const std::vector<std::string>& flags, size_t asset_bytes = 0);

  int port() const { return port_; }
  bool Running() { return process_->Running(); }
  // The exit status (128+signal when killed by one), -1 while running.
  int ExitStatus();
  std::string Output() const { return process_->Output(); }
  // The process's resident set, from /proc/<pid>/status (VmRSS).
  long RssKb() const;
  // CPU time the process used so far (user + system), in seconds.
  double CpuSeconds() const;
  const std::filesystem::path& data_dir() const { return data_; }

 private:
  testutil::TempDir dir_;
  std::filesystem::path data_;
  int port_ = 0;
  std::unique_ptr<testutil::Process> process_;
};

}  // namespace ironboot::adversarial
