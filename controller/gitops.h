#pragma once
// controller/: the GitOps loop. Level-based: each pass reads the whole
// repository at the followed ref and decides from it alone:
//   fetch (Source) -> load + validate (manifests::Load) -> render
//   -> assets (AssetCache, sha512-verified) -> decide (reconcilers::DecidePublish)
//   -> publish (one atomic store swap) -> save as the last good plan.
// A revision that fails to load or render is rejected and reported; the last
// good plan keeps serving. Fetch failures retry with exponential backoff
// (1 s .. 5 min); otherwise the source is polled every `interval`, or at once
// when Trigger() is called (push webhook).

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <nlohmann/json.hpp>

#include "bootserver/metrics.h"
#include "bootserver/store_holder.h"
#include "common/clock.h"
#include "controller/source.h"
#include "manifests/diagnostics.h"
#include "manifests/loader.h"
#include "manifests/render.h"
#include "manifests/repo_check.h"
#include "reconcilers/asset_cache.h"
#include "reconcilers/boot_publish.h"
#include "talos/secrets_bundle.h"

namespace ironboot::controller {

struct GitOpsOptions {
  std::filesystem::path state_dir;  // the last good plan lives in <state_dir>/plan/last-good.json
  std::chrono::milliseconds interval{std::chrono::seconds(30)};
  // When set (serve -secrets-file), base configs are generated from this
  // bundle instead of the repo's spec.baseConfigs files.
  std::shared_ptr<const talos::SecretsBundle> secrets;
  // When set (serve -age-identity) and `secrets` is not: the bundle is the
  // repo's own `secrets.yaml.age` (age, X25519), decrypted in memory with this
  // identity file at each revision. A revision without that file, or whose
  // file does not decrypt, is rejected.
  std::filesystem::path age_identity_file;
  // When set (the upgrade reconciler): the release each pinned machine is
  // served, applied on top of the repo's desired versions at render time, so
  // a machine moves to a new release only when its rollout step comes.
  std::function<std::map<std::string, std::string>()> pins;
  // Called after each publish with the plan now served (the observed state
  // maps MACs and addresses to machines with it).
  std::function<void(std::shared_ptr<const reconcilers::PublishedPlan>)> on_publish;
  // When set (strategy talos-upgrade): machines installed on disk, whose iPXE
  // requests are answered with `exit` (profile kLocalBootProfile).
  std::function<std::set<std::string>()> local_boot;
};

inline constexpr char kLocalBootProfile[] = "ironboot-local-boot";

// Points the groups of `machines` at a profile whose iPXE script is `exit`.
void ApplyLocalBoot(manifests::BootPlan& plan, const std::set<std::string>& machines);

// The repo path of the age-encrypted secrets bundle.
inline constexpr char kEncryptedSecretsPath[] = "secrets.yaml.age";

// A revision that loaded, rendered and whose every machine config passed
// ValidateMachineConfig; `warnings` are the loader's and the validator's.
struct RenderedRevision {
  manifests::BootPlan plan;
  manifests::Diagnostics warnings;
  size_t configs_validated = 0;  // machine configs checked against the schema
  size_t configs_unchanged = 0;  // skipped: identical to the served plan's
  double validate_seconds = 0;
  // The loaded repo (pins applied) and each machine's desired release as the
  // repo says it (before pins).
  std::shared_ptr<const manifests::DesiredState> state;
  std::map<std::string, std::string> desired_versions;
};

// What the upgrade reconciler reads: the newest accepted revision's state.
struct DesiredSnapshot {
  std::string revision;
  std::shared_ptr<const manifests::DesiredState> state;  // null before the first accepted revision
  std::map<std::string, std::string> desired_versions;   // machine -> release the repo wants
};

// Load -> Render (base configs from `secrets` when not null, else from the
// repo) -> validate every machine config against the schema of its machine's
// Talos version and the control-plane addresses. Errors name the machine and
// the schema/instance path, never a config value. Shared by the GitOps loop
// and the validate / render / plan commands, so a repo's CI sees what the
// server would reject. With `served` (the plan served now), a machine whose
// config, Talos version and control-plane addresses are unchanged from it is
// not validated again.
// `pins` (machine -> release) replace machines' desired releases; a pin to a
// release the repo no longer declares is dropped with a warning.
std::expected<RenderedRevision, manifests::Diagnostics> RenderRevision(
    const manifests::RepoFiles& files, manifests::LoadOptions options,
    const talos::SecretsBundle* secrets, const manifests::BootPlan* served = nullptr,
    const std::map<std::string, std::string>* pins = nullptr);

// RenderRevision of an already loaded repo (the GitOps loop re-renders a
// commit it loaded before when rollout pins change).
std::expected<RenderedRevision, manifests::Diagnostics> RenderLoadedRevision(
    manifests::DesiredState loaded, const talos::SecretsBundle* secrets,
    const manifests::BootPlan* served, const std::map<std::string, std::string>* pins,
    manifests::RenderMemo* memo = nullptr);

// Validates the machine configs of `plan` (one per machine) as above.
// `state` gives each machine's source file for the diagnostics.
manifests::Diagnostics ValidateMachineConfigs(const manifests::DesiredState& state,
                                              const manifests::BootPlan& plan,
                                              const manifests::BootPlan* served = nullptr,
                                              size_t* validated = nullptr,
                                              size_t* unchanged = nullptr);

// manifests::CheckRepo with an optional secrets bundle and the machine-config
// validation (for `ironboot validate` and `ironboot render`).
manifests::RepoCheck CheckRepoDir(const std::string& dir,
                                  const std::optional<std::string>& previous,
                                  const talos::SecretsBundle* secrets);

// The controller's metrics (issue list, prefix ironboot_).
struct GitOpsMetrics {
  explicit GitOpsMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& fetches;      // source_fetch_total{result}
  prometheus::Gauge& last_success;                       // source_last_success_timestamp_seconds
  prometheus::Family<prometheus::Gauge>& revision;       // source_revision_info{revision}
  prometheus::Family<prometheus::Counter>& reconciles;   // reconcile_total{reconciler,result}
  prometheus::Family<prometheus::Histogram>& durations;  // reconcile_duration_seconds{reconciler}
  prometheus::Gauge& manifest_errors;                    // manifest_errors
  prometheus::Gauge& poll_interval;                      // source_poll_interval_seconds
};

class GitOpsController {
 public:
  // Borrowed pointers must outlive the controller.
  GitOpsController(GitOpsOptions options, SourcePtr source, reconcilers::AssetCache* assets,
                   bootserver::StoreHolder* holder, bootserver::HttpMetrics* http_metrics,
                   std::shared_ptr<prometheus::Registry> registry, ClockPtr clock);
  ~GitOpsController();

  // Publishes the plan a previous run saved, if any, so machines boot before
  // git answers. Returns false (and logs why) when there is none or it is unusable.
  bool RestoreLastGood();

  // Runs passes in a background thread until Stop().
  void Start();
  void Stop();
  // Asks for a pass now (push webhook). Thread-safe.
  void Trigger(const std::string& why);
  // Renders the last fetched revision again (pins changed) without fetching. Thread-safe.
  void RequestRender(const std::string& why);

  // One pass. Returns the fetch error if fetching failed (the caller backs
  // off); a rejected revision is not an error of the pass. Thread-compatible:
  // call from one thread (Start's, or a test's).
  Result<void> ReconcileOnce();

  // Who is asking for /status. kPublic (any client): machines by name, role,
  // address, release, arch, profile and paused, never their MACs, which with
  // a MAC-keyed boot protocol help target a machine. kLocal (a loopback
  // client, i.e. someone on the boot server itself, as `ironboot plan
  // --server` and the runbook's jq lines there): adds each machine's "macs".
  enum class StatusView { kPublic, kLocal };

  // What /status shows. Thread-safe. Contains no secret material.
  nlohmann::json Status(StatusView view = StatusView::kPublic) const;

  // The revision served now, "" before the first publish. Thread-safe.
  std::string ServedRevision() const;
  // The plan served now (null before the first publish). Thread-safe.
  std::shared_ptr<const reconcilers::PublishedPlan> ServedPlan() const;
  // The newest accepted revision's desired state. Thread-safe.
  DesiredSnapshot Desired() const;

 private:
  void Run();
  void Publish(reconcilers::PublishedPlan plan, bool save);
  void Reject(const std::string& revision, const manifests::Diagnostics& diagnostics);
  // Load, render, assets, publish of one fetched snapshot.
  void Process(const Snapshot& snapshot);

  // Constant after construction.
  const GitOpsOptions options_;
  const SourcePtr source_;
  reconcilers::AssetCache* const assets_;
  bootserver::StoreHolder* const holder_;
  bootserver::HttpMetrics* const http_metrics_;
  const std::shared_ptr<prometheus::Registry> registry_;
  const ClockPtr clock_;
  GitOpsMetrics metrics_;

  // Owned by the pass thread.
  std::string last_commit_;  // commit of the last pass that got past fetching
  bool retry_assets_ = false;
  std::optional<Snapshot> last_snapshot_;  // the last fetched revision, for RequestRender
  bool force_process_ = false;             // render even if the commit is unchanged
  std::shared_ptr<const manifests::DesiredState> loaded_;  // Load() of loaded_commit_, before pins
  std::string loaded_commit_;
  bool loaded_with_secrets_ = false;
  manifests::RenderMemo memo_;  // machine configs of loaded_commit_ (rollout re-renders)
  std::string saved_revision_;  // of the last good plan file; Publish's caller thread only
  std::chrono::steady_clock::time_point saved_at_{};

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                                          // guarded by mu_
  bool triggered_ = false;                                     // guarded by mu_
  bool rerender_ = false;                                      // guarded by mu_
  DesiredSnapshot desired_;                                    // guarded by mu_
  std::shared_ptr<const reconcilers::PublishedPlan> served_;   // guarded by mu_
  nlohmann::json status_source_ = nlohmann::json::object();    // guarded by mu_
  nlohmann::json status_rejected_;                             // guarded by mu_ (null if none)
  nlohmann::json status_held_back_ = nlohmann::json::array();  // guarded by mu_
  std::string published_at_;                                   // guarded by mu_
  std::thread thread_;
};

}  // namespace ironboot::controller
