#include "tests/e2e/e2e_util.h"

#include <signal.h>

#include <sstream>
#include <thread>

namespace ironboot::e2e {

namespace fs = std::filesystem;
using testutil::Run;

namespace {

constexpr char kQemu[] = "qemu-system-x86_64";

// The value of key=value or key="value" in an access log line ("" when absent).
std::string Field(const std::string& line, const std::string& key) {
  std::string needle = " " + key + "=";
  size_t at = line.find(needle);
  if (at == std::string::npos) {
    return "";
  }
  at += needle.size();
  if (at < line.size() && line[at] == '"') {
    size_t end = line.find('"', at + 1);
    return line.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
  }
  size_t end = line.find(' ', at);
  return line.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

}  // namespace

std::string QemuUnavailableReason() {
  auto version =
      Run({"sh", "-c", std::string("command -v ") + kQemu + " && " + kQemu + " --version"});
  if (version.exit_code != 0) {
    return std::string(kQemu) +
           " not found (install qemu-system-x86 and ipxe-qemu: scripts/install-deps.sh)";
  }
  // The iPXE option ROMs QEMU loads for -boot n (package ipxe-qemu; Debian's
  // QEMU looks in /usr/lib/ipxe/qemu, other builds in /usr/share/qemu).
  for (const char* rom : {"efi-virtio.rom", "efi-e1000.rom"}) {
    if (!fs::exists(fs::path("/usr/lib/ipxe/qemu") / rom) &&
        !fs::exists(fs::path("/usr/share/qemu") / rom)) {
      return std::string(rom) + " not in /usr/lib/ipxe/qemu or /usr/share/qemu (install ipxe-qemu)";
    }
  }
  return "";
}

std::string Sha512Hex(const fs::path& file) {
  auto r = Run({"sha512sum", file.string()});
  return r.exit_code == 0 ? r.output.substr(0, 128) : "";
}

std::optional<StandInRelease> BuildRelease(const fs::path& out_dir, const std::string& marker,
                                           std::string& error) {
  auto r = Run({std::string(IRONBOOT_SOURCE_DIR) + "/tests/e2e/make_initramfs.sh",
                IRONBOOT_E2E_CACHE_DIR, out_dir.string(), marker});
  if (r.exit_code != 0) {
    error = "make_initramfs.sh exited " + std::to_string(r.exit_code) + ": " + r.output;
    return std::nullopt;
  }
  StandInRelease release{marker, out_dir / "vmlinuz", out_dir / "initramfs.img", "", ""};
  release.kernel_sha512 = Sha512Hex(release.kernel);
  release.initramfs_sha512 = Sha512Hex(release.initramfs);
  return release;
}

Ironboot::Ironboot(const std::vector<std::string>& args, int port,
                   std::chrono::milliseconds ready_timeout)
    : port_(port != 0 ? port : testutil::FreePort()) {
  std::vector<std::string> argv = {IRONBOOT_BINARY, "serve", "-address",
                                   "127.0.0.1:" + std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = std::make_unique<testutil::Process>(argv);
  ready_ = testutil::WaitFor(
      [&] { return process_->Running() && testutil::HttpGet(port_, "/metrics").status == 200; },
      ready_timeout);
}

double Ironboot::Metric(const std::string& metric, const std::vector<std::string>& labels) const {
  auto body = testutil::HttpGet(port_, "/metrics").body;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(metric + "{", 0) != 0 && line.rfind(metric + " ", 0) != 0) {
      continue;
    }
    bool all = true;
    for (const auto& label : labels) {
      all = all && line.find(label) != std::string::npos;
    }
    if (all) {
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return 0;
}

std::vector<AccessLine> ParseAccessLog(const std::string& log) {
  std::vector<AccessLine> lines;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(" http: client=") == std::string::npos) {
      continue;
    }
    AccessLine a;
    a.method = Field(line, "method");
    a.target = Field(line, "target");
    std::string status = Field(line, "status");
    a.status = status.empty() ? 0 : std::stoi(status);
    a.group = Field(line, "group");
    if (a.group == "-") {
      a.group.clear();
    }
    a.raw = line;
    lines.push_back(std::move(a));
  }
  return lines;
}

GuestResult BootGuest(int port, Nic nic, const std::string& mac, std::chrono::seconds timeout,
                      Firmware firmware,
                      const std::function<bool(const std::string& serial)>& stop) {
  testutil::TempDir dir;
  const fs::path serial = dir / "serial.log";
  const std::string device = nic == Nic::kVirtio ? "virtio-net-pci" : "e1000";
  std::vector<std::string> argv = {
      kQemu,       "-accel",
      "tcg",       "-nographic",
      "-monitor",  "none",
      "-serial",   "file:" + serial.string(),
      "-m",        "512",
      "-netdev",   "user,id=n0,bootfile=http://10.0.2.2:" + std::to_string(port) + "/boot.ipxe",
      "-device",   device + ",netdev=n0,mac=" + mac,
      "-boot",     "n",
      "-no-reboot"};
  if (firmware == Firmware::kUefi) {
    argv.insert(argv.end(), {"-bios", kOvmf});
  }
  GuestResult result;
  const auto start = std::chrono::steady_clock::now();
  testutil::Process qemu(argv);
  const auto deadline = start + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto status = qemu.Wait(std::chrono::milliseconds(100))) {
      result.exited = true;
      result.exit_code = *status;
      break;
    }
    if (stop && stop(fs::exists(serial) ? testutil::ReadFile(serial) : "")) {
      break;
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result.exited) {
    qemu.Signal(SIGKILL);
    qemu.Wait(std::chrono::seconds(5));
  }
  result.qemu_output = qemu.Output();
  result.serial = fs::exists(serial) ? testutil::ReadFile(serial) : "";
  return result;
}

std::string MarkerLine(const std::string& serial) {
  std::istringstream in(serial);
  for (std::string line; std::getline(in, line);) {
    size_t at = line.find("IRONBOOT-E2E: config ");
    if (at != std::string::npos) {
      while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) {
        line.pop_back();
      }
      return line.substr(at);
    }
  }
  return "";
}

}  // namespace ironboot::e2e
