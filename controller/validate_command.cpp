// `ironboot validate DIR [--previous DIR]`: checks a cluster repo offline (for
// the repo's CI): loads, validates and renders it, prints every diagnostic,
// exits 1 on errors, 0 when clean or with warnings only, 2 on usage errors.

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "controller/commands.h"
#include "controller/flags.h"
#include "controller/gitops.h"
#include "manifests/repo_check.h"
#include "talos/secrets_bundle.h"

namespace ironboot::controller {
namespace {

constexpr char kValidateUsage[] =
    "usage: ironboot validate DIR [--previous DIR] [--secrets FILE]\n\n"
    "Checks the cluster repo in DIR: every manifest field, the cross-document rules,\n"
    "that every machine config renders (patches apply, kernel command line fits) and\n"
    "passes the Talos schema of its machine's release.\n"
    "Prints every problem as file:line:column: field: message.\n\n"
    "  --previous DIR   the repo as it is deployed now (e.g. a checkout of main);\n"
    "                   refuses upgrades that skip a Talos minor release from it\n"
    "  --secrets FILE   generate base configs from this secrets bundle (as serve\n"
    "                   -secrets-file does) instead of the repo's spec.baseConfigs\n\n"
    "Exit status: 0 valid (warnings allowed), 1 errors, 2 usage.\n";

}  // namespace

int ValidateCommand(Args args) {
  FlagSet flags("validate");
  flags.String("previous", "", "the repo as deployed now");
  flags.String("secrets", "", "secrets bundle for base configs");
  flags.Bool("help", "show this help");
  flags.Bool("h", "show this help");
  if (auto parsed = flags.Parse(args); !parsed) {
    std::fprintf(stderr, "ironboot %s\n\n%s", parsed.error().message.c_str(), kValidateUsage);
    return 2;
  }
  if (flags.GetBool("help") || flags.GetBool("h")) {
    std::fputs(kValidateUsage, stdout);
    return 0;
  }
  if (flags.positional().size() > 1) {
    std::fprintf(stderr, "ironboot validate: unexpected argument \"%s\"\n\n%s",
                 flags.positional()[1].c_str(), kValidateUsage);
    return 2;
  }
  std::optional<std::string> dir;
  if (!flags.positional().empty()) {
    dir = flags.positional()[0];
  }
  std::optional<std::string> previous = flags.GetOptional("previous");
  std::optional<std::string> secrets_file = flags.GetOptional("secrets");
  if (!dir) {
    std::fprintf(stderr, "ironboot validate: missing DIR\n\n%s", kValidateUsage);
    return 2;
  }
  std::optional<talos::SecretsBundle> secrets;
  if (secrets_file) {
    auto loaded = talos::LoadSecretsBundleFile(*secrets_file);
    if (!loaded) {
      std::fprintf(stderr, "ironboot validate: --secrets: %s\n", loaded.error().message.c_str());
      return 1;
    }
    secrets = std::move(*loaded);
  }
  auto checked = CheckRepoDir(*dir, previous, secrets ? &*secrets : nullptr);
  if (!checked.error.empty()) {
    std::fprintf(stderr, "ironboot validate: %s\n", checked.error.c_str());
    return 1;
  }
  std::fputs(checked.diagnostics.ToString().c_str(), stdout);
  size_t errors = checked.diagnostics.ErrorCount();
  size_t warnings = checked.diagnostics.WarningCount();
  if (errors > 0) {
    std::printf("%s: %zu error(s), %zu warning(s)\n", dir->c_str(), errors, warnings);
    return 1;
  }
  std::printf("%s: valid: %zu machine(s), %zu group(s), %zu profile(s), %zu warning(s)\n",
              dir->c_str(), checked.plan->machines.size(), checked.plan->groups.size(),
              checked.plan->profiles.size(), warnings);
  return 0;
}

}  // namespace ironboot::controller
