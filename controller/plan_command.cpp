// `ironboot plan`: what a revision of a cluster repo would change, per machine,
// against another revision or against what a running server serves (like
// `terraform plan`). Offline except for the source it is pointed at.

#include <curl/curl.h>

#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "bootserver/mac.h"
#include "common/log.h"
#include "controller/commands.h"
#include "controller/flags.h"
#include "controller/git_source.h"
#include "controller/gitops.h"
#include "controller/plan_diff.h"
#include "manifests/loader.h"
#include "manifests/render.h"
#include "manifests/repo_dir.h"

namespace ironboot::controller {
namespace fs = std::filesystem;

namespace {

constexpr char kSynopsis[] =
    "ironboot plan DIR --against OLD_DIR\n"
    "       ironboot plan DIR --server URL\n"
    "       ironboot plan --repo URL [--ref REF] [--path SUBDIR] --against OLD_REF\n\n"
    "Shows what the new revision changes per machine: added and removed machines, release,\n"
    "kernel args, and a machine-config diff with secrets masked. Exit 0 when nothing\n"
    "changes, 2 when something does, 1 on errors (like `terraform plan -detailed-exitcode`).";

// Base configs from this bundle when --secrets is given (set once in PlanCommand).
const talos::SecretsBundle* g_secrets = nullptr;

Result<manifests::BootPlan> RenderFiles(const manifests::RepoFiles& files,
                                        const std::string& what) {
  auto rendered = RenderRevision(files, {}, g_secrets);
  if (!rendered) {
    return Fail(ErrorCode::kInvalid, what + " does not validate:\n" + rendered.error().ToString());
  }
  return std::move(rendered->plan);
}

Result<manifests::BootPlan> RenderDir(const std::string& dir) {
  auto files = manifests::ReadRepoDir(dir);
  if (!files) {
    return std::unexpected(files.error());
  }
  return RenderFiles(*files, dir);
}

Result<manifests::BootPlan> RenderGit(const std::string& url, const std::string& ref,
                                      const std::string& path, const fs::path& state_dir) {
  GitSourceOptions options;
  options.url = url;
  options.ref = ref;
  options.path = path;
  options.state_dir = state_dir;
  auto source = GitSource::Create(options);
  if (!source) {
    return std::unexpected(source.error());
  }
  auto snapshot = (*source)->Fetch();
  if (!snapshot) {
    return std::unexpected(snapshot.error());
  }
  return RenderFiles(snapshot->files, snapshot->revision);
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

Result<std::string> HttpGetText(const std::string& url) {
  CURL* curl = curl_easy_init();
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Fail(ErrorCode::kUnavailable, "GET " + url + ": " + curl_easy_strerror(rc));
  }
  if (status != 200) {
    return Fail(status == 404 ? ErrorCode::kNotFound : ErrorCode::kUnavailable,
                "GET " + url + ": HTTP " + std::to_string(status));
  }
  return body;
}

// The served plan as far as the boot server shows it: /status for machines,
// /ipxe for each machine's kernel args, /config for its machine config.
Result<manifests::BootPlan> ServedPlan(std::string server) {
  while (!server.empty() && server.back() == '/') {
    server.pop_back();
  }
  auto status_text = HttpGetText(server + "/status");
  if (!status_text) {
    return std::unexpected(status_text.error());
  }
  manifests::BootPlan plan;
  try {
    auto status = nlohmann::json::parse(*status_text);
    for (const auto& m : status.at("served").at("machines")) {
      manifests::MachineSummary s;
      s.name = m.at("name").get<std::string>();
      s.role = m.at("role").get<std::string>();
      s.macs = m.at("macs").get<std::vector<std::string>>();
      s.address = m.value("address", "");
      s.talos_version = m.at("release").get<std::string>();
      s.arch = m.value("arch", "");
      s.profile = m.value("profile", s.name);
      if (!s.macs.empty()) {
        std::string hyphen = s.macs[0];
        for (auto& c : hyphen) {
          c = c == ':' ? '-' : c;
        }
        auto script = HttpGetText(server + "/ipxe?mac=" + hyphen);
        bootserver::Profile profile;
        profile.id = s.profile;
        if (script) {
          auto at = script->find("\nkernel ");
          if (at != std::string::npos) {
            std::string line = script->substr(at + 8, script->find('\n', at + 8) - at - 8);
            std::stringstream words(line);
            std::string word;
            words >> profile.kernel;
            while (words >> word) {
              profile.args.push_back(word);
            }
          }
        }
        plan.profiles.push_back(profile);
        if (auto config = HttpGetText(server + "/config?mac=" + hyphen)) {
          plan.machine_configs[s.macs[0]] = *config;
        }
      }
      plan.machines.push_back(std::move(s));
    }
  } catch (const nlohmann::json::exception& e) {
    return Fail(ErrorCode::kInvalid,
                server + "/status is not an ironboot GitOps status: " + e.what());
  }
  return plan;
}

int Fail1(const Error& e) {
  std::fprintf(stderr, "ironboot plan: %s\n", e.message.c_str());
  return 1;
}

}  // namespace

int PlanCommand(Args args) {
  FlagSet flags("plan");
  flags.String("against", "",
               "the old revision: a directory, or (with --repo) a branch, tag or commit");
  flags.String("server", "", "compare against what this ironboot server serves (http://host:8080)");
  flags.String("repo", "", "read both revisions from this git repository");
  flags.String("ref", "", "with --repo: the new revision (default: the remote's HEAD branch)");
  flags.String("path", "", "with --repo: subdirectory holding the manifests");
  flags.String("secrets", "",
               "generate base configs from this secrets bundle (as serve -secrets-file)");
  flags.Bool("help", "show this help");
  if (auto ok = flags.Parse(args); !ok) {
    return Fail1(ok.error());
  }
  if (flags.GetBool("help")) {
    std::printf("%s", flags.Usage(kSynopsis).c_str());
    return 0;
  }
  SetLogLevel("warn");
  std::optional<talos::SecretsBundle> secrets;
  if (!flags.Get("secrets").empty()) {
    auto loaded = talos::LoadSecretsBundleFile(flags.Get("secrets"));
    if (!loaded) {
      return Fail1(Error{loaded.error().code, "--secrets: " + loaded.error().message});
    }
    secrets = std::move(*loaded);
    g_secrets = &*secrets;
  }
  Result<manifests::BootPlan> from = Fail(ErrorCode::kInvalid, "");
  Result<manifests::BootPlan> to = Fail(ErrorCode::kInvalid, "");
  if (!flags.Get("repo").empty()) {
    if (flags.Get("against").empty()) {
      return Fail1(Error{ErrorCode::kInvalid, "--repo needs --against OLD_REF"});
    }
    char tmpl[] = "/tmp/ironboot-plan-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      return Fail1(Error{ErrorCode::kInternal, "cannot create a temporary directory"});
    }
    fs::path state_dir = tmpl;
    to = RenderGit(flags.Get("repo"), flags.Get("ref"), flags.Get("path"), state_dir);
    if (to) {
      from = RenderGit(flags.Get("repo"), flags.Get("against"), flags.Get("path"), state_dir);
    }
    std::error_code ec;
    fs::remove_all(state_dir, ec);
  } else {
    if (flags.positional().size() != 1) {
      return Fail1(Error{ErrorCode::kInvalid, "want one cluster repo DIR (see --help)"});
    }
    to = RenderDir(flags.positional()[0]);
    if (!to) {
      return Fail1(to.error());
    }
    if (!flags.Get("server").empty()) {
      from = ServedPlan(flags.Get("server"));
    } else if (!flags.Get("against").empty()) {
      from = RenderDir(flags.Get("against"));
    } else {
      return Fail1(Error{ErrorCode::kInvalid, "want --against OLD_DIR or --server URL"});
    }
  }
  if (!to) {
    return Fail1(to.error());
  }
  if (!from) {
    return Fail1(from.error());
  }
  auto summary = DiffPlans(*from, *to);
  std::fputs(summary.text.c_str(), stdout);
  return summary.added + summary.removed + summary.changed == 0 ? 0 : 2;
}

}  // namespace ironboot::controller
