#include "fleet/sim_kernel.h"

#include <fstream>
#include <system_error>

namespace ironboot::fleet {

std::string SimKernel(std::string_view version) {
  return std::string(kSimKernelMagic) + " talos=" + std::string(version) +
         "\nThis is not a Linux kernel: ironboot's simulated Talos nodes read the line above.\n";
}

std::string SimInitramfs(std::string_view version) {
  return "IRONBOOT-SIM-INITRAMFS talos=" + std::string(version) + "\n";
}

namespace {
Result<void> Write(const std::filesystem::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) {
    return Fail(ErrorCode::kInternal, "write " + path.string() + ": failed");
  }
  return {};
}
}  // namespace

Result<SimAssetPaths> WriteSimAssets(const std::filesystem::path& dir, std::string_view version) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Fail(ErrorCode::kInternal, "create " + dir.string() + ": " + ec.message());
  }
  SimAssetPaths paths{dir / "vmlinuz-amd64", dir / "initramfs-amd64.xz"};
  if (auto r = Write(paths.kernel, SimKernel(version)); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = Write(paths.initramfs, SimInitramfs(version)); !r) {
    return std::unexpected(r.error());
  }
  return paths;
}

Result<std::string> SimKernelVersion(std::string_view kernel, std::string_view source) {
  std::string_view first = kernel.substr(0, kernel.find('\n'));
  std::string prefix = std::string(kSimKernelMagic) + " talos=";
  auto bad = [&] {
    std::string shown;
    for (char c : first.substr(0, 40)) {
      shown += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return Fail(ErrorCode::kInvalid, std::string(source) +
                                         ": not a simulated Talos kernel (want first line \"" +
                                         prefix + "vX.Y.Z\", got \"" + shown + "\")");
  };
  if (first.rfind(prefix, 0) != 0) {
    return bad();
  }
  std::string version(first.substr(prefix.size()));
  while (!version.empty() && (version.back() == '\r' || version.back() == ' ')) {
    version.pop_back();
  }
  if (version.size() < 2 || version[0] != 'v') {
    return bad();
  }
  return version;
}

}  // namespace ironboot::fleet
