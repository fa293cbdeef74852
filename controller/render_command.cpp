// `ironboot render DIR --out OUT [--previous DIR]`: renders a cluster repo to
// a Matchbox data dir (groups/, profiles/, generic/<machine>.yaml machine
// configs) so a site can keep running Matchbox while it moves to ironboot.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <system_error>

#include "controller/commands.h"
#include "controller/flags.h"
#include "controller/gitops.h"
#include "manifests/boot_plan.h"
#include "manifests/repo_check.h"
#include "talos/secrets_bundle.h"

namespace ironboot::controller {
namespace {

constexpr char kRenderUsage[] =
    "usage: ironboot render DIR --out OUT [--previous DIR] [--secrets FILE]\n\n"
    "Validates the cluster repo in DIR and writes what it renders as a Matchbox data\n"
    "dir: OUT/groups/<id>.json, OUT/profiles/<id>.json and each machine's config as\n"
    "OUT/generic/<machine>.yaml (served by Matchbox at /generic?mac=...). Files in those\n"
    "three folders that the repo no longer renders are removed. Nothing is written\n"
    "when the repo has errors. --secrets FILE generates the base configs from a secrets\n"
    "bundle (as serve -secrets-file does) instead of the repo's spec.baseConfigs.\n\n"
    "Exit status: 0 written, 1 errors, 2 usage.\n";

constexpr const char* kManagedDirs[] = {"groups", "profiles", "generic"};

// Writes `content` to `path` via a temporary file and rename, so a Matchbox
// reading the dir never sees half a file.
bool WriteAtomically(const std::filesystem::path& path, const std::string& content,
                     std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) {
    *error = path.parent_path().string() + ": " + ec.message();
    return false;
  }
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    out.flush();
    if (!out) {
      *error = tmp.string() + ": cannot write";
      return false;
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    *error = path.string() + ": " + ec.message();
    return false;
  }
  return true;
}

}  // namespace

int RenderCommand(Args args) {
  FlagSet flags("render");
  flags.String("out", "", "the Matchbox data dir to write");
  flags.String("previous", "", "the repo as deployed now");
  flags.String("secrets", "", "secrets bundle for base configs");
  flags.Bool("help", "show this help");
  flags.Bool("h", "show this help");
  if (auto parsed = flags.Parse(args); !parsed) {
    std::fprintf(stderr, "ironboot %s\n\n%s", parsed.error().message.c_str(), kRenderUsage);
    return 2;
  }
  if (flags.GetBool("help") || flags.GetBool("h")) {
    std::fputs(kRenderUsage, stdout);
    return 0;
  }
  if (flags.positional().size() > 1) {
    std::fprintf(stderr, "ironboot render: unexpected argument \"%s\"\n\n%s",
                 flags.positional()[1].c_str(), kRenderUsage);
    return 2;
  }
  std::optional<std::string> dir;
  if (!flags.positional().empty()) {
    dir = flags.positional()[0];
  }
  std::optional<std::string> out = flags.GetOptional("out");
  std::optional<std::string> previous = flags.GetOptional("previous");
  std::optional<std::string> secrets_file = flags.GetOptional("secrets");
  if (!dir || !out) {
    std::fprintf(stderr, "ironboot render: %s\n\n%s", !dir ? "missing DIR" : "missing --out OUT",
                 kRenderUsage);
    return 2;
  }
  std::optional<talos::SecretsBundle> secrets;
  if (secrets_file) {
    auto loaded = talos::LoadSecretsBundleFile(*secrets_file);
    if (!loaded) {
      std::fprintf(stderr, "ironboot render: --secrets: %s\n", loaded.error().message.c_str());
      return 1;
    }
    secrets = std::move(*loaded);
  }
  auto checked = CheckRepoDir(*dir, previous, secrets ? &*secrets : nullptr);
  if (!checked.error.empty()) {
    std::fprintf(stderr, "ironboot render: %s\n", checked.error.c_str());
    return 1;
  }
  std::fputs(checked.diagnostics.ToString().c_str(), stderr);
  if (!checked.plan) {
    std::fprintf(stderr, "%s: %zu error(s); nothing written to %s\n", dir->c_str(),
                 checked.diagnostics.ErrorCount(), out->c_str());
    return 1;
  }
  namespace fs = std::filesystem;
  const fs::path root(*out);
  std::set<fs::path> written;
  std::string error;
  for (const auto& [rel, content] : manifests::ToMatchboxFiles(*checked.plan)) {
    fs::path path = root / rel;
    if (!WriteAtomically(path, content, &error)) {
      std::fprintf(stderr, "ironboot render: %s\n", error.c_str());
      return 1;
    }
    written.insert(path.lexically_normal());
  }
  for (const char* sub : kManagedDirs) {
    std::error_code ec;
    for (fs::directory_iterator it(root / sub, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file() && !written.contains(it->path().lexically_normal())) {
        fs::remove(it->path(), ec);
      }
    }
  }
  std::printf("%s: wrote %zu group(s), %zu profile(s), %zu machine config(s) to %s\n", dir->c_str(),
              checked.plan->groups.size(), checked.plan->profiles.size(),
              checked.plan->machines.size(), out->c_str());
  return 0;
}

}  // namespace ironboot::controller
