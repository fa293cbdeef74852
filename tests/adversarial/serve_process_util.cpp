#include "tests/adversarial/serve_process.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace ironboot::adversarial {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

MatchboxServe::MatchboxServe(const std::vector<std::string>& flags, size_t asset_bytes)
    : data_(dir_ / "data") {
  testutil::WriteFile(data_ / "groups/g.json",
                      R"({"id":"g","profile":"p","selector":{"mac":"52:54:00:ab:cd:ef"}})");
  testutil::WriteFile(data_ / "profiles/p.json",
                      R"({"id":"p","boot":{"kernel":"/assets/big.img","args":["a"]}})");
  fs::create_directories(data_ / "assets");
  if (asset_bytes > 0) {
    std::ofstream(data_ / "assets/big.img").close();
    fs::resize_file(data_ / "assets/big.img", asset_bytes);
  }
  port_ = testutil::FreePort();
  // IRONBOOT_PROBE_BINARY runs the probe against another build (e.g. an older
  // release, to see a probe fail there).
  const char* other = std::getenv("IRONBOOT_PROBE_BINARY");
  std::vector<std::string> argv = {other != nullptr ? other : IRONBOOT_BINARY, "serve", "-address",
                                   "127.0.0.1:" + std::to_string(port_), "-data-path",
                                   data_.string(), "-log-level", "warn"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  process_ = std::make_unique<testutil::Process>(argv);
  bool up = testutil::WaitFor(
      [&] { return testutil::HttpGet(port_, "/healthz").status == 200 || !process_->Running(); },
      10s);
  EXPECT_TRUE(up && process_->Running()) << process_->Output();
}

int MatchboxServe::ExitStatus() {
  auto status = process_->Wait(0ms);
  return status ? *status : -1;
}

long MatchboxServe::RssKb() const {
  std::ifstream in("/proc/" + std::to_string(process_->pid()) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

double MatchboxServe::CpuSeconds() const {
  std::ifstream in("/proc/" + std::to_string(process_->pid()) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command's closing parenthesis; utime and stime are the
  // 14th and 15th fields of the line, the 12th and 13th after it.
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::string field;
  long utime = 0;
  long stime = 0;
  for (int i = 1; i <= 13 && rest >> field; ++i) {
    if (i == 12) {
      utime = std::stol(field);
    } else if (i == 13) {
      stime = std::stol(field);
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace ironboot::adversarial
