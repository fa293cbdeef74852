#include "controller/upgrade_loop.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>

#include "common/internal_errors.h"
#include "common/log.h"
#include "common/thread_name.h"
#include "reconcilers/maintenance_window.h"

namespace ironboot::controller {

using nlohmann::json;
using reconcilers::TimePoint;

namespace {


std::string Rfc3339Ms(int64_t ms) {
  return ms == 0 ? "" : FormatRfc3339(TimePoint{std::chrono::milliseconds(ms)});
}

reconcilers::RolloutPolicy PolicyOf(const manifests::Cluster& cluster,
                                    const UpgradeLoopOptions& options) {
  reconcilers::RolloutPolicy p;
  const auto& u = cluster.upgrade;
  p.strategy = u.strategy;
  p.max_unavailable_worker = u.max_unavailable_worker;
  p.gate_timeout = std::chrono::seconds(u.health_timeout_seconds);
  p.paused = u.paused;
  p.reboot_grace = options.reboot_grace;
  p.rollback = u.rollback;
  if (u.canary_soak_seconds) {
    p.canary_soak = std::chrono::seconds(*u.canary_soak_seconds);
  }
  if (u.maintenance_window) {
    auto window = *u.maintenance_window;
    p.window_open = [window](TimePoint t) {
      auto open = reconcilers::IsOpen(window, t);
      if (!open) {
        // The loader checked the zone; a zone file gone since is closed, loudly.
        Logger("upgrade")->error("maintenance window: {}", open.error().message);
        return false;
      }
      return *open;
    };
  }
  return p;
}

}  // namespace

UpgradeLoop::UpgradeLoop(UpgradeLoopOptions options, GitOpsController* gitops,
                         talos::NodeClientPtr client, reconcilers::ObservedState* observed,
                         std::shared_ptr<prometheus::Registry> registry, ClockPtr clock)
    : options_(std::move(options)),
      gitops_(gitops),
      client_(std::move(client)),
      observed_(observed),
      clock_(std::move(clock)),
      sequencer_(options_.state_dir / "rollout" / "state.json", client_, clock_),
      metrics_(*registry) {}

UpgradeLoop::~UpgradeLoop() {
  Stop();
}

Result<void> UpgradeLoop::Load() {
  return sequencer_.Load();
}

void UpgradeLoop::Start() {
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] {
    SetThreadName("upgrade");
    while (true) {
      GuardInternal("upgrade", [this] { PassOnce(); });
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, options_.interval, [&] { return stop_ || woken_; });
      if (stop_) {
        return;
      }
      woken_ = false;
    }
  });
}

void UpgradeLoop::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  wake_.notify_all();
}

void UpgradeLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

std::vector<PollJob> DuePolls(const std::vector<reconcilers::RolloutMachine>& machines,
                              const reconcilers::ObservedMachines& observed,
                              const std::set<std::string>& stepping,
                              const std::map<std::string, TimePoint>& last_poll, TimePoint now,
                              TimePoint last_pass, const UpgradeLoopOptions& options,
                              std::vector<std::string>* no_address) {
  std::vector<PollJob> jobs;
  size_t idle_total = 0;
  struct IdleDue {
    TimePoint last;
    PollJob job;
  };
  std::vector<IdleDue> idle_due;
  for (const auto& m : machines) {
    auto seen = observed.find(m.name);
    const reconcilers::ObservedMachine* o = seen == observed.end() ? nullptr : &seen->second;
    bool cp = m.role == manifests::Role::kControlPlane;
    bool idle = o != nullptr && o->Ready(cp) && !stepping.contains(m.name);
    // A pass woken early by a publish does not poll the others again; a
    // machine that did not answer (rebooting) is asked every other interval.
    auto last = last_poll.find(m.name);
    auto every = idle ? options.idle_poll_interval : options.interval;
    if (o != nullptr && o->api && !o->api->up) {
      every = std::max<std::chrono::milliseconds>(every, 2 * options.interval);
    }
    idle_total += idle ? 1 : 0;
    if (last != last_poll.end() && now - last->second < every - std::chrono::milliseconds(50)) {
      continue;
    }
    std::string node = m.address;
    if (node.empty() && o != nullptr && o->ipxe) {
      node = o->ipxe->address;
    }
    if (node.empty()) {
      no_address->push_back(m.name);
      continue;
    }
    if (idle && last != last_poll.end()) {
      idle_due.push_back({last->second, {m.name, node, cp}});
    } else {
      jobs.push_back({m.name, node, cp});
    }
  }
  if (!idle_due.empty()) {
    // The steady rate over the time since the last pass (a pass held up by a
    // dead node's deadline catches up), at least one interval's worth.
    auto since = options.interval;
    if (last_pass != TimePoint{}) {
      since = std::max<std::chrono::milliseconds>(
          since, std::chrono::duration_cast<std::chrono::milliseconds>(now - last_pass));
    }
    double per_pass = static_cast<double>(idle_total) * static_cast<double>(since.count()) /
                      static_cast<double>(std::max<int64_t>(1, options.idle_poll_interval.count()));
    size_t budget = std::max<size_t>(1, static_cast<size_t>(std::ceil(2 * per_pass)));
    std::stable_sort(idle_due.begin(), idle_due.end(),
                     [](const IdleDue& a, const IdleDue& b) { return a.last < b.last; });
    for (size_t i = 0; i < idle_due.size() && i < budget; ++i) {
      jobs.push_back(std::move(idle_due[i].job));
    }
  }
  return jobs;
}

void UpgradeLoop::Poll(const std::vector<reconcilers::RolloutMachine>& machines,
                       const reconcilers::ObservedMachines& before) {
  TimePoint now = clock_->Now();
  std::vector<std::string> no_address;
  auto jobs =
      DuePolls(machines, before, stepping_, last_poll_, now, last_pass_, options_, &no_address);
  last_pass_ = now;
  for (const auto& name : no_address) {
    reconcilers::ApiObservation obs;
    obs.at = now;
    obs.error = "no address known (no static address in the repo, and it has not booted from this server)";
    observed_->RecordApi(name, std::move(obs));
    last_poll_[name] = now;
  }
  // Every machine polled at once, each on a thread of the pool: calls have
  // deadlines, so a dead node costs one deadline, not one per machine.
  std::vector<reconcilers::ApiObservation> results(jobs.size());
  std::vector<std::function<void()>> tasks;
  tasks.reserve(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    tasks.push_back([this, &job = jobs[i], &obs = results[i]] {
      obs = PollOne(job.node, job.control_plane);
    });
  }
  poll_pool_.RunAll(std::move(tasks));
  for (size_t i = 0; i < jobs.size(); ++i) {
    observed_->RecordApi(jobs[i].machine, std::move(results[i]));
    last_poll_[jobs[i].machine] = now;
  }
}

reconcilers::ApiObservation UpgradeLoop::PollOne(const std::string& node, bool control_plane) {
  reconcilers::ApiObservation obs;
  auto version = client_->Version(node);
  metrics_.CountApiCall("Version", version.has_value());
  obs.at = clock_->Now();
  if (!version) {
    obs.error = version.error().message;
    return obs;
  }
  obs.up = true;
  obs.version = version->tag;
  auto services = client_->Services(node);
  metrics_.CountApiCall("ServiceList", services.has_value());
  if (services) {
    obs.services = std::move(*services);
  } else {
    obs.error = services.error().message;
  }
  if (control_plane) {
    obs.etcd_queried = true;
    auto members = client_->EtcdMembers(node);
    metrics_.CountApiCall("EtcdMemberList", members.has_value());
    if (!members) {
      obs.etcd_error = members.error().message;
      return obs;
    }
    obs.etcd_members = std::move(*members);
    auto status = client_->EtcdStatus(node);
    metrics_.CountApiCall("EtcdStatus", status.has_value());
    if (status) {
      obs.etcd_status = std::move(*status);
    } else {
      obs.etcd_error = status.error().message;
    }
  }
  return obs;
}

void UpgradeLoop::PassOnce() {
  static auto log = Logger("upgrade");
  auto desired = gitops_->Desired();
  auto served = gitops_->ServedPlan();
  if (!desired.state || !desired.state->cluster || !served) {
    return;  // a raw-Matchbox repo, or nothing accepted yet: no fleet to manage
  }
  const auto& cluster = *desired.state->cluster;
  reconcilers::RolloutInput input;
  input.policy = PolicyOf(cluster, options_);
  for (const auto& m : desired.state->machines) {
    reconcilers::RolloutMachine rm;
    rm.name = m.name;
    rm.role = m.role;
    rm.address = m.address ? m.address->address.ToString() : "";
    rm.desired_version = desired.desired_versions[m.name];
    rm.paused = m.paused;
    for (const auto& release : desired.state->releases) {
      if (release.arch == m.arch && !release.installer_image.empty()) {
        rm.installer_images[release.version.text] = release.installer_image;
      }
    }
    if (auto image = rm.installer_images.find(rm.desired_version);
        image != rm.installer_images.end()) {
      rm.installer_image = image->second;
    }
    input.machines.push_back(std::move(rm));
  }
  for (const auto& m : served->plan.machines) {
    input.served_versions[m.name] = m.talos_version;
  }
  Poll(input.machines, observed_->Snapshot());
  bool pins_changed = false;
  auto observed = observed_->Snapshot();
  auto report = sequencer_.Reconcile(input, observed, &pins_changed);
  stepping_.clear();
  for (const auto& s : report.steps) {
    stepping_.insert(s.machine);
  }
  std::set<std::string> local_boot;
  if (input.policy.strategy == "talos-upgrade") {
    for (const auto& m : input.machines) {
      auto o = observed.find(m.name);
      if (o != observed.end() && (o->second.ApiUp() || o->second.up_since)) {
        local_boot.insert(m.name);
      }
    }
    std::lock_guard lock(mu_);
    local_boot.insert(local_boot_.begin(), local_boot_.end());  // installed stays installed
  }
  bool local_boot_changed = false;
  {
    std::lock_guard lock(mu_);
    local_boot_changed = local_boot != local_boot_;
    local_boot_ = local_boot;
  }
  if (pins_changed || local_boot_changed) {
    gitops_->RequestRender(pins_changed ? "rollout: a machine's served release changed"
                                        : "talos-upgrade: installed machines boot from disk");
  }
  metrics_.Update(report, input.policy.gate_timeout);
  std::lock_guard lock(mu_);
  report_ = std::move(report);
  have_report_ = true;
  policy_text_ = input.policy.strategy;
}

std::set<std::string> UpgradeLoop::LocalBoot() const {
  std::lock_guard lock(mu_);
  return local_boot_;
}

json UpgradeLoop::Status() const {
  std::lock_guard lock(mu_);
  if (!have_report_) {
    return nullptr;
  }
  const auto& r = report_;
  json machines = json::array();
  for (const auto& m : r.machines) {
    json j = {{"name", m.name},
              {"role", m.role},
              {"desired", m.desired_version},
              {"served", m.served_version},
              {"observed", m.observed_version},
              {"phase", m.phase},
              {"ready", m.ready},
              {"last_boot", m.last_boot ? FormatRfc3339(*m.last_boot) : ""}};
    if (!m.failed_reason.empty()) {
      j["failed_reason"] = m.failed_reason;
    }
    machines.push_back(std::move(j));
  }
  json steps = json::array();
  for (const auto& s : r.steps) {
    steps.push_back({{"machine", s.machine},
                     {"from", s.from_version},
                     {"to", s.to_version},
                     {"rollback", s.rollback},
                     {"canary", s.canary},
                     {"phase", s.phase},
                     {"gate", s.gate},
                     {"gates_passed", s.gates_passed},
                     {"started", Rfc3339Ms(s.started_ms)},
                     {"reboot_sent", Rfc3339Ms(s.reboot_acked_ms)},
                     {"waiting_on", s.last_error}});
  }
  return {{"machines", machines},
          {"rollout",
           {{"state", r.state},
            {"strategy", policy_text_},
            {"halted_reason", r.halted_reason},
            {"blocked_reason", r.blocked_reason},
            {"steps", steps},
            {"progress",
             {{"done", r.done},
              {"pending", r.pending},
              {"in_progress", r.in_progress},
              {"failed", r.failed},
              {"total", r.machines.size()}}},
            {"completed_steps", r.completed_steps}}},
          {"bootstrap",
           {{"node", r.bootstrap.node},
            {"decided", Rfc3339Ms(r.bootstrap.decided_ms)},
            {"done", Rfc3339Ms(r.bootstrap.done_ms)},
            {"found_running", r.bootstrap.found_running},
            {"status", r.bootstrap_status}}}};
}

}  // namespace ironboot::controller
