#include "fleet/boot_sequence.h"

#include "fleet/http_fetch.h"
#include "fleet/sim_kernel.h"

namespace ironboot::fleet {
namespace {

constexpr int kMaxChains = 8;

Result<std::string> Get(const BootRequest& req, const std::string& url, const char* what) {
  auto r = HttpFetch(url, req.source_ip, req.timeout, req.cancel);
  if (!r) {
    return std::unexpected(r.error());
  }
  if (r->status != 200) {
    return Fail(ErrorCode::kUnavailable, std::string(what) + " GET " + url + ": HTTP " +
                                             std::to_string(r->status) + " (want 200)");
  }
  return std::move(r->body);
}

// Talos substitutes ${mac}, ${uuid}, ... in talos.config= itself (FACTS.md);
// iPXE usually expanded them already.
std::string TalosSubstitute(const std::string& url, const IpxeSettings& s) {
  return ExpandSettings(url, s);
}

}  // namespace

Result<BootOutcome> NetworkBoot(const BootRequest& req) {
  std::string url = req.boot_server_url + "/boot.ipxe";
  BootOutcome out;
  bool have_kernel = false;
  for (int depth = 0;; ++depth) {
    if (depth >= kMaxChains) {
      return Fail(ErrorCode::kInvalid, "iPXE script " + url + ": more than " +
                                           std::to_string(kMaxChains) + " chained scripts");
    }
    auto body = Get(req, url, "iPXE script");
    if (!body) {
      return std::unexpected(body.error());
    }
    auto commands = ParseIpxeScript(ExpandSettings(*body, req.settings), url);
    if (!commands) {
      return std::unexpected(commands.error());
    }
    std::string next;
    for (const auto& c : *commands) {
      if (c.kind == IpxeCommand::Kind::kChain) {
        next = c.url;
        break;
      }
      if (c.kind == IpxeCommand::Kind::kExit) {
        out.exit_to_disk = true;
        return out;
      }
      if (c.kind == IpxeCommand::Kind::kKernel) {
        have_kernel = true;
        out.kernel_url = c.url;
        out.kernel_args = c.args;
      } else if (c.kind == IpxeCommand::Kind::kInitrd) {
        out.initrd_urls.push_back(c.url);
      } else if (c.kind == IpxeCommand::Kind::kBoot) {
        break;
      }
    }
    if (!next.empty()) {
      url = next;
      continue;
    }
    if (!have_kernel) {
      return Fail(
          ErrorCode::kInvalid,
          "iPXE script " + url + ": no kernel to boot (want a \"kernel <url>\" line or \"exit\")");
    }
    break;
  }
  auto kernel = Get(req, out.kernel_url, "kernel");
  if (!kernel) {
    return std::unexpected(kernel.error());
  }
  auto version = SimKernelVersion(*kernel, out.kernel_url);
  if (!version) {
    return std::unexpected(version.error());
  }
  out.version = *version;
  for (const auto& initrd : out.initrd_urls) {
    if (auto r = Get(req, initrd, "initrd"); !r) {
      return std::unexpected(r.error());
    }
  }
  if (std::string config = KernelArg(out.kernel_args, "talos.config"); !config.empty()) {
    out.config_url = TalosSubstitute(config, req.settings);
    auto body = Get(req, out.config_url, "machine config");
    if (!body) {
      return std::unexpected(body.error());
    }
    out.config_bytes = body->size();
  }
  return out;
}

}  // namespace ironboot::fleet
