#pragma once
// fleet/: stand-in Talos boot assets for the simulated fleet. A simulated
// kernel is a small file whose first line is
//   IRONBOOT-SIM-KERNEL talos=v1.12.0
// and a simulated node runs the Talos version its served kernel names.

#include <filesystem>
#include <string>
#include <string_view>

#include "common/error.h"

namespace ironboot::fleet {

inline constexpr std::string_view kSimKernelMagic = "IRONBOOT-SIM-KERNEL";

// The content of a stand-in kernel / initramfs for `version` ("v1.12.0").
std::string SimKernel(std::string_view version);
std::string SimInitramfs(std::string_view version);

struct SimAssetPaths {
  std::filesystem::path kernel;     // <dir>/vmlinuz-amd64
  std::filesystem::path initramfs;  // <dir>/initramfs-amd64.xz
};
// Writes both into `dir` (created) under the release asset names. kInternal
// naming the path when a file cannot be written.
Result<SimAssetPaths> WriteSimAssets(const std::filesystem::path& dir, std::string_view version);

// The Talos version a stand-in kernel names. kInvalid naming `source` (the
// URL it came from) when the first line is not "IRONBOOT-SIM-KERNEL talos=v...".
Result<std::string> SimKernelVersion(std::string_view kernel, std::string_view source);

}  // namespace ironboot::fleet
