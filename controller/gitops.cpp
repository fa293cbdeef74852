#include "controller/gitops.h"

#include <ctime>

#include "bootserver/store.h"
#include "common/internal_errors.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "controller/backoff.h"
#include "controller/plan_file.h"
#include "talos/age_secrets.h"
#include "manifests/loader.h"
#include "manifests/render.h"
#include "manifests/repo_dir.h"
#include "manifests/secrets_base_configs.h"
#include "talos/config_validate.h"

namespace ironboot::controller {
namespace fs = std::filesystem;
using nlohmann::json;
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// "10.0.4.101/24" -> "10.0.4.101".
std::string HostOf(const std::string& address) {
  return address.substr(0, address.find('/'));
}

std::vector<std::string> ControlPlaneHosts(const manifests::BootPlan& plan) {
  std::vector<std::string> hosts;
  for (const auto& m : plan.machines) {
    if (m.role == "controlplane" && !m.address.empty()) {
      hosts.push_back(HostOf(m.address));
    }
  }
  return hosts;
}

}  // namespace

manifests::Diagnostics ValidateMachineConfigs(const manifests::DesiredState& state,
                                              const manifests::BootPlan& plan,
                                              const manifests::BootPlan* served, size_t* validated,
                                              size_t* unchanged) {
  manifests::Diagnostics diags;
  talos::MachineConfigExpectations expect;
  expect.control_plane_addresses = ControlPlaneHosts(plan);
  // A config validated when `served` was accepted gives the same findings
  // again when its text, its release and the control-plane addresses are the same.
  std::map<std::string, const manifests::MachineSummary*> served_machines;
  if (served != nullptr && ControlPlaneHosts(*served) == expect.control_plane_addresses) {
    for (const auto& m : served->machines) {
      served_machines[m.name] = &m;
    }
  }
  size_t checked = 0;
  size_t skipped = 0;
  std::map<std::string, manifests::Position> where;
  for (const auto& m : state.machines) {
    where[m.name] = m.source.document;
  }
  for (const auto& m : plan.machines) {
    if (m.macs.empty()) {
      continue;
    }
    auto config = plan.machine_configs.find(m.macs[0]);
    if (config == plan.machine_configs.end()) {
      continue;
    }
    if (auto it = served_machines.find(m.name); it != served_machines.end()) {
      const auto& before = *it->second;
      auto before_config = before.macs.empty() ? served->machine_configs.end()
                                               : served->machine_configs.find(before.macs[0]);
      if (before.talos_version == m.talos_version &&
          before_config != served->machine_configs.end() &&
          before_config->second == config->second) {
        ++skipped;
        continue;
      }
    }
    ++checked;
    manifests::Position pos = where.contains(m.name) ? where[m.name] : manifests::Position{};
    const std::string field = "machine config";
    const std::string who = "machine " + m.name + " (Talos " + m.talos_version + "): ";
    auto report = talos::ValidateMachineConfig(config->second, m.talos_version, expect);
    if (!report) {
      diags.Error(pos, field, who + report.error().message);
      continue;
    }
    for (const auto& e : report->errors) {
      diags.Error(pos, field,
                  who + "invalid for Talos " + report->talos_minor + ": " + e.ToString());
    }
    for (const auto& w : report->warnings) {
      diags.Warning(pos, field, who + w.ToString());
    }
  }
  if (validated != nullptr) {
    *validated = checked;
  }
  if (unchanged != nullptr) {
    *unchanged = skipped;
  }
  return diags;
}

std::expected<RenderedRevision, manifests::Diagnostics> RenderRevision(
    const manifests::RepoFiles& files, manifests::LoadOptions options,
    const talos::SecretsBundle* secrets, const manifests::BootPlan* served,
    const std::map<std::string, std::string>* pins) {
  options.base_configs_from_secrets = secrets != nullptr;
  auto state = manifests::Load(files, options);
  if (!state) {
    return std::unexpected(state.error());
  }
  return RenderLoadedRevision(std::move(*state), secrets, served, pins);
}

std::expected<RenderedRevision, manifests::Diagnostics> RenderLoadedRevision(
    manifests::DesiredState loaded, const talos::SecretsBundle* secrets,
    const manifests::BootPlan* served, const std::map<std::string, std::string>* pins,
    manifests::RenderMemo* memo) {
  auto* state = &loaded;
  std::map<std::string, std::string> desired_versions;
  if (state->cluster) {
    for (auto& m : state->machines) {
      desired_versions[m.name] = m.DesiredVersion(*state->cluster).text;
    }
  }
  if (pins != nullptr && state->cluster) {
    for (auto& m : state->machines) {
      auto pin = pins->find(m.name);
      if (pin == pins->end() || pin->second == desired_versions[m.name]) {
        continue;
      }
      auto version = manifests::ParseTalosVersion(pin->second);
      if (!version || state->FindRelease(*version, m.arch) == nullptr) {
        state->warnings.Warning(m.source.document, "spec.talosVersion",
                                "machine " + m.name + " runs " + pin->second +
                                    " until its rollout step, but the repository no longer "
                                    "declares a TalosRelease for it (" + m.arch +
                                    "): serving the desired release instead; keep the old "
                                    "TalosRelease until the rollout finishes");
        continue;
      }
      m.talos_version = *version;
    }
  }
  if (secrets != nullptr && state->cluster) {
    // The bundle wins over base config files the Cluster names: say so there.
    for (const char* role : {"controlplane", "worker"}) {
      std::string field = std::string("spec.baseConfigs.") + role;
      if (state->cluster->source.fields.contains(field)) {
        state->warnings.Warning(state->cluster->source.At(field), field,
                                "ignored: base configs are generated from the secrets bundle "
                                "(remove spec.baseConfigs, or drop the bundle to use these files)");
      }
    }
  }
  std::expected<manifests::BootPlan, manifests::Diagnostics> plan;
  if (secrets != nullptr) {
    manifests::SecretsBaseConfigs source(*state, *secrets);
    plan = manifests::Render(*state, source, memo);
  } else {
    plan = manifests::Render(*state, manifests::RepoBaseConfigs(*state), memo);
  }
  if (!plan) {
    manifests::Diagnostics all = state->warnings;
    all.Append(plan.error());
    return std::unexpected(all);
  }
  manifests::Diagnostics all = state->warnings;
  RenderedRevision out;
  auto start = std::chrono::steady_clock::now();
  all.Append(ValidateMachineConfigs(*state, *plan, served, &out.configs_validated,
                                    &out.configs_unchanged));
  out.validate_seconds = Seconds(std::chrono::steady_clock::now() - start);
  if (all.HasErrors()) {
    return std::unexpected(all);
  }
  out.plan = std::move(*plan);
  out.warnings = std::move(all);
  out.desired_versions = std::move(desired_versions);
  out.state = std::make_shared<const manifests::DesiredState>(std::move(loaded));
  return out;
}

manifests::RepoCheck CheckRepoDir(const std::string& dir,
                                  const std::optional<std::string>& previous,
                                  const talos::SecretsBundle* secrets) {
  manifests::RepoCheck result;
  manifests::LoadOptions options;
  options.base_configs_from_secrets = secrets != nullptr;
  if (previous) {
    auto files = manifests::ReadRepoDir(*previous);
    if (!files) {
      result.error = "--previous: " + files.error().message;
      return result;
    }
    auto state = manifests::Load(*files, options);
    if (!state) {
      result.error = "--previous " + *previous +
                     " does not validate, so it cannot be the starting point (" +
                     std::to_string(state.error().ErrorCount()) +
                     " error(s); run ironboot validate " + *previous + ")";
      return result;
    }
    options.current_versions = manifests::CurrentVersions(*state);
  }
  auto files = manifests::ReadRepoDir(dir);
  if (!files) {
    result.error = files.error().message;
    return result;
  }
  auto rendered = RenderRevision(*files, options, secrets);
  manifests::Diagnostics all = rendered ? rendered->warnings : rendered.error();
  // File names as the user typed DIR.
  for (auto d : all.items()) {
    if (!d.position.file.empty()) {
      d.position.file = (fs::path(dir) / d.position.file).lexically_normal().generic_string();
    }
    result.diagnostics.Add(std::move(d));
  }
  if (rendered) {
    result.plan = std::move(rendered->plan);
  }
  return result;
}

void ApplyLocalBoot(manifests::BootPlan& plan, const std::set<std::string>& machines) {
  std::set<std::string> macs;
  for (auto& m : plan.machines) {
    if (machines.contains(m.name)) {
      macs.insert(m.macs.begin(), m.macs.end());
      m.profile = kLocalBootProfile;
    }
  }
  if (macs.empty()) {
    return;
  }
  for (auto& g : plan.groups) {
    auto mac = g.selector.find("mac");
    if (mac != g.selector.end() && macs.contains(mac->second)) {
      g.profile = kLocalBootProfile;
    }
  }
  bootserver::Profile local;
  local.id = kLocalBootProfile;
  local.name = "installed machines boot from their disk (strategy talos-upgrade)";
  local.local_boot = true;
  auto at = std::lower_bound(plan.profiles.begin(), plan.profiles.end(), local,
                             [](const auto& a, const auto& b) { return a.id < b.id; });
  plan.profiles.insert(at, local);
}

GitOpsMetrics::GitOpsMetrics(prometheus::Registry& r)
    : fetches(BuildCounter()
                  .Name("ironboot_source_fetch_total")
                  .Help("Fetches of the cluster repository, by result.")
                  .Register(r)),
      last_success(BuildGauge()
                       .Name("ironboot_source_last_success_timestamp_seconds")
                       .Help("Unix time of the last successful fetch.")
                       .Register(r)
                       .Add({})),
      revision(BuildGauge()
                   .Name("ironboot_source_revision_info")
                   .Help("The revision served now (value 1).")
                   .Register(r)),
      reconciles(BuildCounter()
                     .Name("ironboot_reconcile_total")
                     .Help("Reconcile passes, by reconciler and result.")
                     .Register(r)),
      durations(BuildHistogram()
                    .Name("ironboot_reconcile_duration_seconds")
                    .Help("Time a reconciler took, by reconciler.")
                    .Register(r)),
      manifest_errors(
          BuildGauge()
              .Name("ironboot_manifest_errors")
              .Help("Errors in the newest revision's manifests (0 when it was accepted).")
              .Register(r)
              .Add({})),
      poll_interval(BuildGauge()
                        .Name("ironboot_source_poll_interval_seconds")
                        .Help("How often the cluster repository is polled (source-stale alerts "
                              "compare the last success with it).")
                        .Register(r)
                        .Add({})) {
  for (const char* result : {"ok", "error"}) {
    fetches.Add({{"result", result}});
  }
}

GitOpsController::GitOpsController(GitOpsOptions options, SourcePtr source,
                                   reconcilers::AssetCache* assets, bootserver::StoreHolder* holder,
                                   bootserver::HttpMetrics* http_metrics,
                                   std::shared_ptr<prometheus::Registry> registry, ClockPtr clock)
    : options_(std::move(options)),
      source_(std::move(source)),
      assets_(assets),
      holder_(holder),
      http_metrics_(http_metrics),
      registry_(std::move(registry)),
      clock_(std::move(clock)),
      metrics_(*registry_) {
  metrics_.poll_interval.Set(std::chrono::duration<double>(options_.interval).count());
}

GitOpsController::~GitOpsController() {
  Stop();
}

namespace {
fs::path PlanFile(const fs::path& state_dir) {
  return state_dir / "plan" / "last-good.json";
}

const prometheus::Histogram::BucketBoundaries& ReconcileBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  return kBuckets;
}
}  // namespace

bool GitOpsController::RestoreLastGood() {
  static auto log = Logger("gitops");
  auto plan = LoadPlan(PlanFile(options_.state_dir));
  if (!plan) {
    if (plan.error().code != ErrorCode::kNotFound) {
      log->warn("cannot restore the last good plan: {}", plan.error().message);
    }
    return false;
  }
  log->info("restored the last good plan rev={} machines={}", plan->revision,
            plan->plan.machines.size());
  Publish(std::move(*plan), /*save=*/false);
  return true;
}

void GitOpsController::Publish(reconcilers::PublishedPlan plan, bool save) {
  static auto log = Logger("gitops");
  auto start = std::chrono::steady_clock::now();
  auto content = manifests::ToStoreContent(plan.plan, plan.assets, plan.revision);
  auto store = bootserver::Store::Build(std::move(content));
  for (const auto& p : store->problems()) {
    log->warn("rev={} file={} problem=\"{}\"", plan.revision, p.file, p.reason);
  }
  if (http_metrics_ != nullptr) {
    http_metrics_->SetStore(store->group_count(), store->profile_count(), store->problems().size());
    http_metrics_->CountReload(true);
  }
  // /status must show what /readyz and /ipxe serve: update it with the swap,
  // before the (fsync-slow) save.
  auto published = std::make_shared<const reconcilers::PublishedPlan>(std::move(plan));
  std::string previous;
  {
    std::lock_guard lock(mu_);
    holder_->Publish(store);
    if (served_) {
      previous = served_->revision;
    }
    served_ = published;
    published_at_ = FormatRfc3339(clock_->Now());
  }
  if (options_.on_publish) {
    options_.on_publish(published);
  }
  // A re-render of the saved revision (a rollout pin) is saved at most every
  // 10 s: a restart re-renders with the pins from the rollout state anyway.
  auto now = std::chrono::steady_clock::now();
  if (save && published->revision == saved_revision_ && now - saved_at_ < std::chrono::seconds(10)) {
    save = false;
  }
  if (save) {
    saved_revision_ = published->revision;
    saved_at_ = now;
    if (auto saved = SavePlan(*published, PlanFile(options_.state_dir)); !saved) {
      log->error("published rev={} but could not save it as the last good plan: {}",
                 published->revision, saved.error().message);
    }
  }
  if (!previous.empty() && previous != ServedRevision()) {
    metrics_.revision.Remove(&metrics_.revision.Add({{"revision", previous}}));
  }
  metrics_.revision.Add({{"revision", ServedRevision()}}).Set(1);
  metrics_.reconciles.Add({{"reconciler", "boot"}, {"result", "ok"}}).Increment();
  metrics_.durations.Add({{"reconciler", "boot"}}, ReconcileBuckets())
      .Observe(Seconds(std::chrono::steady_clock::now() - start));
  log->info("published rev={} groups={} profiles={} machines={}", ServedRevision(),
            store->group_count(), store->profile_count(), published->plan.machines.size());
}

void GitOpsController::Reject(const std::string& revision, const manifests::Diagnostics& diags) {
  static auto log = Logger("gitops");
  metrics_.manifest_errors.Set(static_cast<double>(diags.ErrorCount()));
  json errors = json::array();
  json warnings = json::array();
  for (const auto& d : diags.items()) {
    (d.severity == manifests::Severity::kError ? errors : warnings).push_back(d.ToString());
    log->warn("rev={} {}", revision, d.ToString());
  }
  log->error("rejected rev={} errors={}: still serving rev={}", revision, diags.ErrorCount(),
             ServedRevision().empty() ? "(none)" : ServedRevision());
  std::lock_guard lock(mu_);
  status_rejected_ = {{"revision", revision},
                      {"time", FormatRfc3339(clock_->Now())},
                      {"errors", errors},
                      {"warnings", warnings}};
}

Result<void> GitOpsController::ReconcileOnce() {
  static auto log = Logger("gitops");
  // Source.
  auto t0 = std::chrono::steady_clock::now();
  auto snapshot = source_->Fetch();
  metrics_.durations.Add({{"reconciler", "source"}}, ReconcileBuckets())
      .Observe(Seconds(std::chrono::steady_clock::now() - t0));
  std::string now = FormatRfc3339(clock_->Now());
  if (!snapshot) {
    metrics_.fetches.Add({{"result", "error"}}).Increment();
    metrics_.reconciles.Add({{"reconciler", "source"}, {"result", "error"}}).Increment();
    log->error("fetch failed source=\"{}\": {}", source_->Describe(), snapshot.error().message);
    std::lock_guard lock(mu_);
    status_source_["last_fetch"] = {
        {"time", now}, {"result", "error"}, {"error", snapshot.error().message}};
    return std::unexpected(snapshot.error());
  }
  metrics_.fetches.Add({{"result", "ok"}}).Increment();
  metrics_.reconciles.Add({{"reconciler", "source"}, {"result", "ok"}}).Increment();
  metrics_.last_success.Set(static_cast<double>(
      std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count()));
  {
    std::lock_guard lock(mu_);
    status_source_["last_fetch"] = {
        {"time", now}, {"result", "ok"}, {"revision", snapshot->revision}};
    status_source_["last_success"] = now;
  }
  if (snapshot->commit == last_commit_ && !retry_assets_ && !force_process_) {
    return {};  // nothing new
  }
  force_process_ = false;
  last_commit_ = snapshot->commit;
  last_snapshot_ = std::move(*snapshot);
  Process(*last_snapshot_);
  return {};
}

void GitOpsController::Process(const Snapshot& snap) {
  static auto log = Logger("gitops");
  const Snapshot* snapshot = &snap;

  // Manifests: load, validate, render.
  auto t1 = std::chrono::steady_clock::now();
  manifests::LoadOptions load_options;
  std::shared_ptr<const reconcilers::PublishedPlan> served;
  {
    std::lock_guard lock(mu_);
    served = served_;
  }
  if (served) {
    for (const auto& m : served->plan.machines) {
      load_options.current_versions[m.name] = m.talos_version;
    }
  }
  // The secrets bundle: from -secrets-file, or decrypted from the repo itself.
  std::shared_ptr<const talos::SecretsBundle> secrets = options_.secrets;
  if (!secrets && !options_.age_identity_file.empty()) {
    auto file = snapshot->files.find(kEncryptedSecretsPath);
    Result<talos::SecretsBundle> bundle =
        file == snapshot->files.end()
            ? Fail(ErrorCode::kNotFound,
                   std::string(kEncryptedSecretsPath) +
                       ": missing from the repository (serve -age-identity expects the secrets "
                       "bundle there, encrypted with age to the identity's recipient)")
            : talos::LoadEncryptedSecretsBundle(file->second, options_.age_identity_file);
    if (!bundle) {
      manifests::Diagnostics d;
      d.Error(manifests::Position{kEncryptedSecretsPath, 0, 0}, "", bundle.error().message);
      metrics_.reconciles.Add({{"reconciler", "render"}, {"result", "error"}}).Increment();
      Reject(snapshot->revision, d);
      retry_assets_ = false;
      return;
    }
    secrets = std::make_shared<const talos::SecretsBundle>(std::move(*bundle));
  }
  std::map<std::string, std::string> pins;
  if (options_.pins) {
    pins = options_.pins();
  }
  // A re-render of the same commit (pins changed) reuses its loaded state:
  // parsing the repo is most of a render's cost.
  std::expected<RenderedRevision, manifests::Diagnostics> rendered;
  if (loaded_ && loaded_commit_ == snapshot->commit && loaded_with_secrets_ == (secrets != nullptr)) {
    rendered = RenderLoadedRevision(*loaded_, secrets.get(), served ? &served->plan : nullptr,
                                    options_.pins ? &pins : nullptr, &memo_);
  } else {
    memo_.configs.clear();
    load_options.base_configs_from_secrets = secrets != nullptr;
    auto state = manifests::Load(snapshot->files, load_options);
    if (state) {
      loaded_ = std::make_shared<const manifests::DesiredState>(*state);
      loaded_commit_ = snapshot->commit;
      loaded_with_secrets_ = secrets != nullptr;
      rendered = RenderLoadedRevision(std::move(*state), secrets.get(),
                                      served ? &served->plan : nullptr, options_.pins ? &pins : nullptr,
                                      &memo_);
    } else {
      loaded_.reset();
      rendered = std::unexpected(state.error());
    }
  }
  metrics_.durations.Add({{"reconciler", "render"}}, ReconcileBuckets())
      .Observe(Seconds(std::chrono::steady_clock::now() - t1));
  if (!rendered) {
    metrics_.reconciles.Add({{"reconciler", "render"}, {"result", "error"}}).Increment();
    Reject(snapshot->revision, rendered.error());
    retry_assets_ = false;
    return;
  }
  metrics_.reconciles.Add({{"reconciler", "render"}, {"result", "ok"}}).Increment();
  metrics_.manifest_errors.Set(0);
  for (const auto& w : rendered->warnings.items()) {
    log->warn("rev={} {}", snapshot->revision, w.ToString());
  }
  log->info(
      "rev={} machine configs: {} validated against the Talos schema in {:.1f} ms, {} "
      "unchanged since the served plan",
      snapshot->revision, rendered->configs_validated, rendered->validate_seconds * 1000,
      rendered->configs_unchanged);
  manifests::BootPlan* plan = &rendered->plan;
  if (options_.local_boot) {
    ApplyLocalBoot(*plan, options_.local_boot());
  }

  // Assets: every release in use, verified before anything points at it.
  auto t2 = std::chrono::steady_clock::now();
  reconcilers::AssetOutcome outcome;
  for (const auto& release : plan->releases) {
    std::string key = reconcilers::ReleaseKey(release.version, release.arch);
    for (const auto* asset : {&release.kernel, &release.initramfs}) {
      reconcilers::AssetSpec spec;
      spec.name = "talos " + release.version + " " + release.arch + " " +
                  (asset == &release.kernel ? "kernel" : "initramfs");
      spec.url = asset->url;
      spec.sha512 = asset->sha512;
      spec.sha512sum_url = asset->sha512sum_url;
      spec.file_name_in_sums = asset->sum_file_name;
      auto path = assets_->Ensure(spec);
      if (!path) {
        outcome.failed_releases.emplace(key, path.error().message);
        log->error("assets of release {} not available: {}", key, path.error().message);
        break;
      }
      outcome.verified[asset->served_path] = *path;
    }
  }
  metrics_.durations.Add({{"reconciler", "assets"}}, ReconcileBuckets())
      .Observe(Seconds(std::chrono::steady_clock::now() - t2));
  metrics_.reconciles
      .Add({{"reconciler", "assets"}, {"result", outcome.failed_releases.empty() ? "ok" : "error"}})
      .Increment();
  retry_assets_ = !outcome.failed_releases.empty();

  // Decide and publish.
  auto decision = reconcilers::DecidePublish(snapshot->revision, *plan, outcome, served.get());
  json held = json::array();
  for (const auto& h : decision.held_back) {
    held.push_back({{"machine", h.machine},
                    {"release", h.release},
                    {"reason", h.reason},
                    {"serving", h.kept_previous ? "previous plan" : "nothing"}});
    log->warn("machine={} held back: release {} not available ({})", h.machine, h.release,
              h.kept_previous ? "serving its previous plan" : "not served");
  }
  {
    std::lock_guard lock(mu_);
    status_rejected_ = nullptr;
    status_held_back_ = held;
    desired_ = DesiredSnapshot{snapshot->revision, rendered->state, rendered->desired_versions};
  }
  Publish(std::move(decision.published), /*save=*/true);
}

void GitOpsController::RequestRender(const std::string& why) {
  Logger("gitops")->info("render requested: {}", why);
  {
    std::lock_guard lock(mu_);
    rerender_ = true;
  }
  wake_.notify_all();
}

std::shared_ptr<const reconcilers::PublishedPlan> GitOpsController::ServedPlan() const {
  std::lock_guard lock(mu_);
  return served_;
}

DesiredSnapshot GitOpsController::Desired() const {
  std::lock_guard lock(mu_);
  return desired_;
}

void GitOpsController::Start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] {
    SetThreadName("gitops");
    Run();
  });
}

void GitOpsController::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void GitOpsController::Trigger(const std::string& why) {
  static auto log = Logger("gitops");
  log->info("fetch requested: {}", why);
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
  }
  wake_.notify_all();
}

void GitOpsController::Run() {
  BackoffOptions backoff_options;
  Backoff backoff(clock_, backoff_options);
  auto next = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock lock(mu_);
      wake_.wait_until(lock, next, [&] { return stop_ || triggered_ || rerender_; });
      if (stop_) {
        return;
      }
      if (rerender_ && !triggered_ && std::chrono::steady_clock::now() < next &&
          last_snapshot_) {
        // Pins changed: the same revision again, without a fetch.
        rerender_ = false;
        lock.unlock();
        Process(*last_snapshot_);
        continue;
      }
      force_process_ |= rerender_;
      rerender_ = false;
      triggered_ = false;
    }
    // Last resort: a throw that escaped every adapter costs this pass (retried
    // with backoff, counted, logged), never the process that boots the fleet.
    bool ok = false;
    GuardInternal("gitops", [&] { ok = ReconcileOnce().has_value(); });
    std::chrono::milliseconds delay = options_.interval;
    if (!ok || retry_assets_) {
      delay = std::min(backoff.Failure(), options_.interval * 10);
      Logger("gitops")->info("next attempt in {} ms", delay.count());
    } else {
      backoff.Success();
    }
    next = std::chrono::steady_clock::now() + delay;
  }
}

std::string GitOpsController::ServedRevision() const {
  std::lock_guard lock(mu_);
  return served_ ? served_->revision : std::string();
}

json GitOpsController::Status(StatusView view) const {
  std::lock_guard lock(mu_);
  json machines = json::array();
  if (served_) {
    for (const auto& m : served_->plan.machines) {
      json machine = {{"name", m.name},
                      {"role", m.role},
                      {"address", m.address},
                      {"release", m.talos_version},
                      {"arch", m.arch},
                      {"profile", m.profile},
                      {"paused", m.paused}};
      if (view == StatusView::kLocal) {
        machine["macs"] = m.macs;
      }
      machines.push_back(std::move(machine));
    }
  }
  json source = status_source_;
  source["description"] = source_->Describe();
  source["interval_seconds"] = std::chrono::duration<double>(options_.interval).count();
  return {{"source", source},
          {"served",
           {{"revision", served_ ? served_->revision : ""},
            {"published_at", published_at_},
            {"machines", machines}}},
          {"rejected", status_rejected_},
          {"held_back", status_held_back_}};
}

}  // namespace ironboot::controller
