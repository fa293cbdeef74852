// `ironboot machineconfig patch FILE --patch @P.yaml [--patch ...] [-o OUT]`:
// talosctl's `machineconfig patch`, with our Talos patch engine.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "controller/commands.h"
#include "talos/config_patch.h"

namespace ironboot::controller {

namespace {

constexpr const char* kUsage =
    "usage: ironboot machineconfig patch FILE --patch @PATCH.yaml [--patch ...] [-o OUT]\n"
    "\n"
    "Prints FILE (a Talos machine config) with the patches applied in order, like\n"
    "`talosctl machineconfig patch`. A patch is a strategic merge patch or an RFC 6902\n"
    "JSON patch (JSON or YAML).\n"
    "\n"
    "flags:\n"
    "  -p, --patch PATCH   @file, or the patch itself inline; repeatable\n"
    "  -o, --output OUT    write the result to OUT (mode 0600) instead of stdout\n";

Result<std::string> ReadWholeFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kNotFound,
                "cannot read " + what + " " + path + ": " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return Fail(ErrorCode::kInternal, "cannot read " + what + " " + path);
  }
  return ss.str();
}

// Turns one --patch argument into a Patch: "@file" is a file; like talosctl,
// an argument with no space or newline that does not start with [ or { is a
// file name too; anything else is the patch itself.
Result<talos::Patch> LoadPatch(const std::string& arg, size_t index) {
  if (arg.starts_with("@")) {
    std::string path = arg.substr(1);
    auto content = ReadWholeFile(path, "patch file");
    if (!content) {
      return std::unexpected(content.error());
    }
    return talos::Patch{path, std::move(*content)};
  }
  if (!arg.empty() && arg.find_first_of(" \n") == std::string::npos && arg[0] != '[' &&
      arg[0] != '{') {
    auto content = ReadWholeFile(arg, "patch file");
    if (!content) {
      return std::unexpected(content.error());
    }
    return talos::Patch{arg, std::move(*content)};
  }
  return talos::Patch{"inline patch #" + std::to_string(index), arg};
}

int Patch(Args args) {
  std::string file;
  std::string output;
  std::vector<std::string> patch_args;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string_view flag) -> std::optional<std::string> {
      std::string eq = std::string(flag) + "=";
      if (a.starts_with(eq)) {
        return a.substr(eq.size());
      }
      if (i + 1 >= args.size()) {
        return std::nullopt;
      }
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "-p" || a == "--patch" || a.starts_with("--patch=")) {
      auto v = value(a.starts_with("--patch=") ? "--patch" : a);
      if (!v) {
        std::fprintf(stderr, "ironboot machineconfig patch: %s needs a value\n%s", a.c_str(),
                     kUsage);
        return 1;
      }
      patch_args.push_back(*v);
    } else if (a == "-o" || a == "--output" || a.starts_with("--output=")) {
      auto v = value(a.starts_with("--output=") ? "--output" : a);
      if (!v) {
        std::fprintf(stderr, "ironboot machineconfig patch: %s needs a value\n%s", a.c_str(),
                     kUsage);
        return 1;
      }
      output = *v;
    } else if (a.starts_with("-") && a != "-") {
      std::fprintf(stderr, "ironboot machineconfig patch: unknown flag %s\n%s", a.c_str(), kUsage);
      return 1;
    } else if (file.empty()) {
      file = a;
    } else {
      std::fprintf(stderr, "ironboot machineconfig patch: unexpected argument %s\n%s", a.c_str(),
                   kUsage);
      return 1;
    }
  }
  if (file.empty()) {
    std::fprintf(stderr, "ironboot machineconfig patch: missing the machine config FILE\n%s",
                 kUsage);
    return 1;
  }
  if (patch_args.empty()) {
    std::fprintf(stderr, "ironboot machineconfig patch: no --patch given\n%s", kUsage);
    return 1;
  }
  auto config = ReadWholeFile(file, "machine config");
  if (!config) {
    std::fprintf(stderr, "ironboot machineconfig patch: %s\n", config.error().message.c_str());
    return 1;
  }
  std::vector<talos::Patch> patches;
  for (size_t i = 0; i < patch_args.size(); ++i) {
    auto p = LoadPatch(patch_args[i], i + 1);
    if (!p) {
      std::fprintf(stderr, "ironboot machineconfig patch: %s\n", p.error().message.c_str());
      return 1;
    }
    patches.push_back(std::move(*p));
  }
  auto patched = talos::ApplyPatches(*config, patches);
  if (!patched) {
    std::fprintf(stderr, "ironboot machineconfig patch: patching %s: %s\n", file.c_str(),
                 patched.error().message.c_str());
    return 1;
  }
  if (output.empty() || output == "-") {
    std::fwrite(patched->data(), 1, patched->size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  // Mode 0600: a machine config holds the cluster's secrets.
  if (auto r = WriteFileAtomically(output, *patched, {.create_parents = false}); !r) {
    std::fprintf(stderr, "ironboot machineconfig patch: %s\n", r.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int MachineconfigCommand(Args args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 1 : 0;
  }
  if (args[0] != "patch") {
    std::fprintf(stderr, "ironboot machineconfig: unknown subcommand \"%s\"\n%s", args[0].c_str(),
                 kUsage);
    return 1;
  }
  return Patch(args.subspan(1));
}

}  // namespace ironboot::controller
