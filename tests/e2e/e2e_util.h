#pragma once
// tests/e2e: helpers for the network-boot tests: the stand-in Talos images
// (tests/e2e/make_initramfs.sh), an `ironboot serve` child on a free port, QEMU
// guests that PXE-boot from it with iPXE (TCG, user networking: the guest
// reaches the host's 127.0.0.1 as 10.0.2.2), and parsing ironboot's access log
// and /metrics.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/testutil/testutil.h"

namespace ironboot::e2e {

// Why QEMU cannot run here (empty when it can): no qemu-system-x86_64 or no iPXE
// NIC ROMs (ipxe-qemu).
std::string QemuUnavailableReason();

// One stand-in release: Debian's kernel plus a busybox initramfs whose /init
// prints "IRONBOOT-E2E: config ok build=<marker> ..." (see make_initramfs.sh).
struct StandInRelease {
  std::string marker;
  std::filesystem::path kernel;
  std::filesystem::path initramfs;
  std::string kernel_sha512;
  std::string initramfs_sha512;
};

// Builds (or reuses) a release in `out_dir` with the kernel cache in IRONBOOT_E2E_CACHE_DIR.
// On failure returns nullopt and puts the script's output in `error`.
std::optional<StandInRelease> BuildRelease(const std::filesystem::path& out_dir,
                                           const std::string& marker, std::string& error);

std::string Sha512Hex(const std::filesystem::path& file);

// `ironboot serve -address 127.0.0.1:<port> <args...>` (a free port when `port`
// is 0), waited on until /metrics answers (or `ready_timeout` passes).
class Ironboot {
 public:
  explicit Ironboot(const std::vector<std::string>& args, int port = 0,
                    std::chrono::milliseconds ready_timeout = std::chrono::seconds(20));
  int port() const { return port_; }
  bool ready() const { return ready_; }
  // Everything ironboot wrote (its log is on stderr).
  std::string Log() const { return process_->Output(); }
  // The value of the first sample of `metric` whose labels contain every
  // `label="value"` given (0 when there is none).
  double Metric(const std::string& metric, const std::vector<std::string>& labels) const;

 private:
  int port_;
  bool ready_ = false;
  std::unique_ptr<testutil::Process> process_;
};

// One access log line: `info http: client=... method=GET target="..." status=200 ... group=g`.
struct AccessLine {
  std::string method;
  std::string target;
  int status = 0;
  std::string group;  // empty when no group was selected
  std::string raw;
};
std::vector<AccessLine> ParseAccessLog(const std::string& log);

enum class Nic { kVirtio, kE1000 };
// kBios: SeaBIOS runs the NIC's legacy iPXE ROM. kUefi: OVMF (package ovmf)
// loads the ROM's EFI iPXE driver, and the kernel boots through its EFI stub.
enum class Firmware { kBios, kUefi };
constexpr char kOvmf[] = "/usr/share/ovmf/OVMF.fd";

struct GuestResult {
  bool exited = false;  // the guest powered off (QEMU exited) before the deadline
  int exit_code = -1;
  double seconds = 0;  // wall time from QEMU start to exit (or the deadline)
  std::string serial;  // the serial console
  std::string qemu_output;
};

// PXE-boots a QEMU guest (TCG, -no-reboot) whose NIC ROM chains
// http://10.0.2.2:<port>/boot.ipxe and waits until it powers off or `stop`
// (polled with the serial console so far) returns true or `timeout` passes;
// then QEMU is killed.
GuestResult BootGuest(int port, Nic nic, const std::string& mac, std::chrono::seconds timeout,
                      Firmware firmware = Firmware::kBios,
                      const std::function<bool(const std::string& serial)>& stop = nullptr);

// The guest's marker line ("IRONBOOT-E2E: config ..."), or "" if none.
std::string MarkerLine(const std::string& serial);

}  // namespace ironboot::e2e
