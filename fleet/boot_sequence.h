#pragma once
// fleet/: one network boot of a simulated node, over real HTTP, as iPXE and
// Talos do it: GET <boot server>/boot.ipxe, follow `chain` (settings
// expanded), then either `exit` (boot from disk) or download the kernel and
// initrds and the machine config named by talos.config=.

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "common/error.h"
#include "fleet/ipxe_script.h"

namespace ironboot::fleet {

struct BootOutcome {
  bool exit_to_disk = false;  // the script said `exit`: boot the installed OS
  std::string kernel_url;
  std::vector<std::string> initrd_urls;
  std::vector<std::string> kernel_args;
  std::string version;     // from the stand-in kernel's first line
  std::string config_url;  // talos.config= after substitution; "" if absent
  size_t config_bytes = 0;
};

struct BootRequest {
  std::string boot_server_url;                // "http://127.0.0.1:8080" (no trailing /)
  IpxeSettings settings;                      // mac, uuid, ... of the node
  std::string source_ip;                      // the node's address
  std::chrono::milliseconds timeout{5000};    // per HTTP request
  const std::atomic<bool>* cancel = nullptr;  // true: abort the request in flight
};

// Runs the boot. Errors name the URL: kUnavailable when a server did not
// answer or answered non-200 (the firmware retries), kInvalid for a script
// that boots nothing, a chain loop, or a kernel that is not a stand-in kernel.
Result<BootOutcome> NetworkBoot(const BootRequest& request);

}  // namespace ironboot::fleet
