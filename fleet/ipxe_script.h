#pragma once
// fleet/: what a simulated node's iPXE does with a boot script: expand
// ${...} settings, resolve relative URLs against the script's own URL, and
// read the commands that matter for booting (kernel, initrd, chain, exit,
// boot). Pure functions; the HTTP side is fleet/boot_sequence.h.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace ironboot::fleet {

// The settings iPXE knows about a machine, as `${name}` / `${name:type}`.
struct IpxeSettings {
  std::string mac;  // "52:54:00:12:34:56"
  std::string uuid;
  std::string serial;
  std::string hostname;
  std::string domain;
  std::string ip;
  std::string buildarch = "x86_64";
};

// Expands ${mac}, ${mac:hexhyp}, ${mac:hex}, ${net0/mac...}, ${uuid},
// ${serial}, ${hostname}, ${domain}, ${ip}, ${buildarch}, and `:uristring`
// forms, like iPXE; unknown settings expand to "" (as iPXE does).
std::string ExpandSettings(std::string_view text, const IpxeSettings& settings);

// `ref` resolved against `base` (an absolute http:// URL), as iPXE resolves a
// relative `kernel`, `initrd` or `chain` URL against the current script's.
std::string ResolveUrl(std::string_view base, std::string_view ref);

// One command of a script that the simulation acts on.
struct IpxeCommand {
  enum class Kind { kKernel, kInitrd, kChain, kExit, kBoot };
  Kind kind = Kind::kBoot;
  std::string url;                // kernel, initrd, chain: resolved absolute URL
  std::vector<std::string> args;  // kernel: command-line arguments
};

// Parses an (expanded) script fetched from `script_url`. The first line must
// be "#!ipxe". Lines iPXE would run that do not change what boots (echo,
// set, dhcp, comments, labels, ...) are skipped. Options such as
// "kernel --name x" are dropped. kInvalid naming the URL and line when the
// script does not start with #!ipxe or a kernel/initrd/chain has no URL.
Result<std::vector<IpxeCommand>> ParseIpxeScript(std::string_view script,
                                                 std::string_view script_url);

// The value of `name=` among kernel arguments ("talos.config"), or "".
std::string KernelArg(const std::vector<std::string>& args, std::string_view name);

}  // namespace ironboot::fleet
