#include "reconcilers/rollout.h"

#include <algorithm>
#include <set>

#include "common/log.h"

namespace ironboot::reconcilers {

namespace {

int64_t Ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool IsControlPlane(const RolloutMachine& m) {
  return m.role == manifests::Role::kControlPlane;
}

std::string Duration(std::chrono::seconds s) {
  auto total = s.count();
  std::string out;
  if (total >= 3600) {
    out += std::to_string(total / 3600) + "h";
    total %= 3600;
  }
  if (total >= 60) {
    out += std::to_string(total / 60) + "m";
    total %= 60;
  }
  if (total > 0 || out.empty()) {
    out += std::to_string(total) + "s";
  }
  return out;
}

const ObservedMachine* Find(const ObservedMachines& observed, const std::string& name) {
  auto it = observed.find(name);
  return it == observed.end() ? nullptr : &it->second;
}

// A gate's answer for a machine whose Talos API does not answer, with the
// last poll's error.
std::string NotAnswering(const ObservedMachine* o) {
  return "Talos API not answering" + (o && o->api ? ": " + o->api->error : std::string());
}

std::string TargetSignature(const RolloutInput& input) {
  std::string sig;
  for (const auto& m : input.machines) {
    sig += m.name + "=" + m.desired_version + ",";
  }
  return sig;
}

}  // namespace

EtcdView ViewEtcd(const std::vector<RolloutMachine>& machines, const ObservedMachines& observed) {
  EtcdView view;
  std::map<uint64_t, std::string> members;  // id -> hostname
  std::set<uint64_t> leaders;
  std::map<std::string, const ObservedMachine*> cps;
  for (const auto& m : machines) {
    if (!IsControlPlane(m)) {
      continue;
    }
    const ObservedMachine* o = Find(observed, m.name);
    cps[m.name] = o;
    if (o == nullptr || !o->ApiUp() || !o->api->etcd_queried || !o->api->etcd_error.empty()) {
      continue;
    }
    for (const auto& member : o->api->etcd_members) {
      members[member.id] = member.hostname;
    }
    if (o->api->etcd_status && o->api->etcd_status->leader != 0) {
      leaders.insert(o->api->etcd_status->leader);
    }
  }
  view.bootstrapped = !members.empty();
  view.members = members.size();
  for (const auto& [id, hostname] : members) {
    auto it = cps.find(hostname);
    const ObservedMachine* o = it == cps.end() ? nullptr : it->second;
    std::string why;
    bool healthy = o != nullptr && o->ApiUp() && o->ServicesHealthy(true, &why) &&
                   o->api->etcd_error.empty() &&
                   (!o->api->etcd_status || o->api->etcd_status->errors.empty());
    if (healthy) {
      ++view.healthy;
      if (leaders.contains(id)) {
        view.leader = true;
      }
    } else if (view.problem.empty()) {
      if (o == nullptr) {
        view.problem = "etcd member " + hostname + " is not a control plane of this cluster";
      } else if (!o->ApiUp()) {
        view.problem = "etcd member " + hostname + " is down (Talos API not answering)";
      } else if (!why.empty()) {
        view.problem = "etcd member " + hostname + ": " + why;
      } else if (!o->api->etcd_error.empty()) {
        view.problem = "etcd member " + hostname + ": " + o->api->etcd_error;
      } else {
        view.problem = "etcd member " + hostname + " reports errors: " + o->api->etcd_status->errors[0];
      }
    }
  }
  if (view.bootstrapped && !view.leader && view.problem.empty()) {
    view.problem = "etcd has no leader";
  }
  if (!view.bootstrapped) {
    view.problem = "etcd is not bootstrapped";
  }
  return view;
}

bool EtcdToleratesOneDown(const EtcdView& view, std::string* why) {
  if (!view.bootstrapped) {
    *why = "etcd is not bootstrapped yet";
    return false;
  }
  if (view.healthy < view.members || !view.leader) {
    *why = view.problem.empty() ? "etcd is not healthy" : view.problem;
    return false;
  }
  if (view.members == 1) {
    return true;
  }
  if (view.members == 2) {
    *why = "etcd has exactly 2 members: taking one down loses quorum (Talos refuses too)";
    return false;
  }
  size_t quorum = view.members / 2 + 1;
  if (view.healthy - 1 < quorum) {
    *why = "taking one of " + std::to_string(view.healthy) + " healthy etcd members down leaves " +
           std::to_string(view.healthy - 1) + ", below quorum " + std::to_string(quorum);
    return false;
  }
  return true;
}

Sequencer::Sequencer(std::filesystem::path state_file, talos::NodeClientPtr client, ClockPtr clock)
    : state_file_(std::move(state_file)),
      client_(std::move(client)),
      clock_(std::move(clock)),
      started_at_(clock_->Now()) {}

Result<void> Sequencer::Load() {
  auto loaded = LoadRolloutState(state_file_);
  if (!loaded) {
    return std::unexpected(loaded.error());
  }
  std::lock_guard lock(pins_mu_);
  state_ = std::move(*loaded);
  if (!state_.steps.empty()) {
    Logger("rollout")->info("resuming {} step(s) from {}", state_.steps.size(), state_file_.string());
  }
  return {};
}

std::map<std::string, std::string> Sequencer::Pins() const {
  std::lock_guard lock(pins_mu_);
  return state_.pins;
}

bool Sequencer::Persist() {
  dirty_ = true;
  return true;
}

bool Sequencer::Flush() {
  if (!dirty_) {
    return true;
  }
  std::lock_guard lock(pins_mu_);
  auto saved = SaveRolloutState(state_, state_file_);
  if (!saved) {
    Logger("rollout")->error("cannot save the rollout state: {}; no action until it can",
                             saved.error().message);
    return false;
  }
  dirty_ = false;
  return true;
}

void Sequencer::Bootstrap(const RolloutInput& input, const ObservedMachines& observed,
                          RolloutReport& report) {
  static auto log = Logger("rollout");
  std::vector<const RolloutMachine*> cps;
  for (const auto& m : input.machines) {
    if (IsControlPlane(m)) {
      cps.push_back(&m);
    }
  }
  if (cps.empty() || state_.bootstrap.done_ms != 0) {
    return;
  }
  int64_t now = Ms(clock_->Now());
  // Running somewhere already (bootstrapped before we looked, or our call
  // went through before a restart): never call again.
  for (const auto* cp : cps) {
    const ObservedMachine* o = Find(observed, cp->name);
    if (o != nullptr && o->ApiUp() && o->api->etcd_queried && o->api->etcd_error.empty() &&
        !o->api->etcd_members.empty()) {
      state_.bootstrap.found_running = state_.bootstrap.node.empty();
      state_.bootstrap.done_ms = now;
      Persist();
      log->info("etcd is running (reported by {}): cluster bootstrapped", cp->name);
      return;
    }
  }
  if (state_.bootstrap.node.empty()) {
    std::vector<std::string> waiting;
    for (const auto* cp : cps) {
      const ObservedMachine* o = Find(observed, cp->name);
      if (o == nullptr || !o->ApiUp()) {
        waiting.push_back(cp->name);
      }
    }
    if (!waiting.empty()) {
      std::string names;
      for (const auto& w : waiting) {
        names += (names.empty() ? "" : ", ") + w;
      }
      report.bootstrap_status = "waiting for every control plane's Talos API before bootstrapping (" +
                                names + ")";
      return;
    }
    // The decision is durable before the call, and final.
    state_.bootstrap.node = cps.front()->name;
    state_.bootstrap.decided_ms = now;
    Persist();
    if (!Flush()) {
      state_.bootstrap.node.clear();
      return;
    }
    log->info("bootstrap: chose {} (decision saved; no other node will ever be bootstrapped)",
              state_.bootstrap.node);
  } else if (Ms(started_at_) > state_.bootstrap.decided_ms &&
             now - Ms(started_at_) <
                 std::chrono::duration_cast<std::chrono::milliseconds>(input.policy.reboot_grace).count()) {
    // Restarted after deciding: the call may have gone through; give etcd
    // time to show before calling the same node again.
    report.bootstrap_status = "restarted after deciding to bootstrap " + state_.bootstrap.node +
                              ": waiting to see whether etcd is already running";
    return;
  }
  const RolloutMachine* chosen = nullptr;
  for (const auto* cp : cps) {
    if (cp->name == state_.bootstrap.node) {
      chosen = cp;
    }
  }
  if (chosen == nullptr) {
    report.bootstrap_status = "the bootstrap node " + state_.bootstrap.node +
                              " is no longer a control plane in the repository; not bootstrapping "
                              "another one (a second bootstrap splits etcd)";
    return;
  }
  const ObservedMachine* o = Find(observed, chosen->name);
  if (o == nullptr || !o->ApiUp()) {
    report.bootstrap_status = "waiting for " + chosen->name + " (chosen for bootstrap) to answer";
    return;
  }
  if (now - last_bootstrap_attempt_ms_ <
      std::chrono::duration_cast<std::chrono::milliseconds>(input.policy.bootstrap_retry).count()) {
    report.bootstrap_status = "retrying Bootstrap on " + chosen->name + " shortly";
    return;
  }
  last_bootstrap_attempt_ms_ = now;
  auto result = client_->Bootstrap(chosen->address.empty() ? chosen->name : chosen->address);
  if (!result) {
    log->error("bootstrap of {} failed: {}; retrying the same node", chosen->name,
               result.error().message);
    report.bootstrap_status = "Bootstrap on " + chosen->name + " failed: " + result.error().message;
    return;
  }
  state_.bootstrap.done_ms = Ms(clock_->Now());
  Persist();
  log->info("bootstrapped etcd on {}", chosen->name);
}

std::vector<std::string> Sequencer::GatesFor(const RolloutStep& step,
                                             const RolloutPolicy& policy) const {
  std::vector<std::string> gates;
  // pxe-reboot: the machine fetched the new kernel, initramfs and config from
  // us. talos-upgrade machines boot from disk: the API went away and came back.
  gates.push_back(policy.strategy == "talos-upgrade" ? "rebooted" : "boot");
  if (!step.rollback) {
    gates.push_back("version");
  }
  gates.push_back("services");
  gates.push_back("etcd");
  return gates;
}

std::string Sequencer::CheckGate(const std::string& gate, const RolloutStep& step,
                                 const RolloutMachine& machine, const RolloutInput& input,
                                 const ObservedMachines& observed) const {
  const ObservedMachine* o = Find(observed, machine.name);
  bool cp = IsControlPlane(machine);
  TimePoint sent{std::chrono::milliseconds(step.reboot_attempt_ms)};
  if (gate == "boot") {
    // Events before this process started are not in memory: a node up on
    // the new release after a restart fetched it from us before the restart.
    if (started_at_ > sent && o != nullptr && o->ApiUp() && o->api->version == step.to_version) {
      return "";
    }
    auto fetched = [&](const std::optional<BootFetch>& f, bool check_version) {
      return f && f->at >= sent && (!check_version || f->version == step.to_version);
    };
    if (o == nullptr || !fetched(o->kernel, true)) {
      return "has not fetched the " + step.to_version + " kernel since the reboot";
    }
    if (!fetched(o->initramfs, true)) {
      return "has not fetched the " + step.to_version + " initramfs since the reboot";
    }
    if (!fetched(o->config, false)) {
      return "has not fetched its machine config since the reboot";
    }
    return "";
  }
  if (gate == "rebooted") {
    // Talos accepts Upgrade at once, then drains and pulls the image before
    // it reboots: until the API has been seen down and back, nothing moved.
    TimePoint acked{std::chrono::milliseconds(step.reboot_acked_ms)};
    if (o == nullptr || !o->ApiUp()) {
      return NotAnswering(o);
    }
    if (o->last_down && *o->last_down > acked) {
      return "";
    }
    // Polls before this process started are not in memory: after a restart
    // the node's answering is all there is to go on.
    if (started_at_ > acked) {
      return "";
    }
    return "has not gone down and come back since the Upgrade was accepted";
  }
  if (gate == "version") {
    if (o == nullptr || !o->ApiUp()) {
      return NotAnswering(o);
    }
    if (o->api->version != step.to_version) {
      return "Talos API reports " + o->api->version + ", want " + step.to_version;
    }
    return "";
  }
  if (gate == "services") {
    if (o == nullptr || !o->ApiUp()) {
      return "Talos API not answering";
    }
    std::string why;
    if (!o->ServicesHealthy(cp, &why)) {
      return why;
    }
    return "";
  }
  if (gate == "etcd") {
    size_t cps = 0;
    for (const auto& m : input.machines) {
      cps += IsControlPlane(m) ? 1 : 0;
    }
    if (cps == 0 || state_.bootstrap.done_ms == 0) {
      return "";
    }
    EtcdView view = ViewEtcd(input.machines, observed);
    if (view.members < cps) {
      return "etcd has " + std::to_string(view.members) + " of " + std::to_string(cps) + " members";
    }
    if (view.healthy < view.members || !view.leader) {
      return view.problem;
    }
    return "";
  }
  return "unknown gate " + gate;
}

void Sequencer::FailStep(RolloutStep& step, const std::string& reason, const RolloutInput& input) {
  static auto log = Logger("rollout");
  log->error("machine={} step {} -> {} FAILED: {}; rollout halted, no other machine is touched",
             step.machine, step.from_version, step.to_version, reason);
  state_.failed[step.machine] = reason;
  state_.halted_reason = "machine " + step.machine + " failed: " + reason;
  if (input.policy.rollback && !step.rollback && !step.from_version.empty() &&
      step.from_version != step.to_version) {
    RolloutStep back;
    back.machine = step.machine;
    back.from_version = step.to_version;
    back.to_version = step.from_version;
    back.rollback = true;
    back.started_ms = back.phase_since_ms = Ms(clock_->Now());
    {
      std::lock_guard lock(pins_mu_);
      state_.pins[step.machine] = back.to_version;
    }
    log->warn("machine={} rolling back to {}", step.machine, back.to_version);
    state_.steps.push_back(back);
  }
}

bool Sequencer::Advance(RolloutStep& step, const RolloutMachine& machine,
                        const RolloutInput& input, const ObservedMachines& observed,
                        RolloutReport& report) {
  static auto log = Logger("rollout");
  const auto& policy = input.policy;
  TimePoint now_tp = clock_->Now();
  int64_t now = Ms(now_tp);
  int64_t timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(policy.gate_timeout).count();
  const ObservedMachine* o = Find(observed, machine.name);
  std::string node = machine.address.empty() ? machine.name : machine.address;

  if (step.phase == "pin") {
    auto served = input.served_versions.find(machine.name);
    if (served != input.served_versions.end() && served->second == step.to_version) {
      step.phase = "reboot";
      step.phase_since_ms = now;
      Persist();
    } else if (now - step.phase_since_ms > timeout_ms) {
      FailStep(step,
               "the boot server did not publish release " + step.to_version + " for it within " +
                   Duration(policy.gate_timeout) + " (see held_back in /status)",
               input);
      return true;
    } else {
      return false;
    }
  }

  if (step.phase == "reboot") {
    if (step.reboot_attempt_ms != 0 && step.reboot_acked_ms == 0) {
      // Sent before a restart, answer unknown.
      bool shows = o == nullptr || !o->ApiUp() ||
                   (o->api && o->api->version == step.to_version && !step.rollback) ||
                   (o->ipxe && Ms(o->ipxe->at) >= step.reboot_attempt_ms);
      int64_t grace = std::chrono::duration_cast<std::chrono::milliseconds>(policy.reboot_grace).count();
      if (shows) {
        step.reboot_acked_ms = step.reboot_attempt_ms;
        log->info("machine={} the reboot sent before the restart went through", machine.name);
      } else if (now - std::max(step.reboot_attempt_ms, Ms(started_at_)) < grace) {
        return false;
      } else {
        log->warn("machine={} still up on {} {}s after a reboot was sent before a restart: sending it again",
                  machine.name, o->api->version, grace / 1000);
        step.reboot_attempt_ms = 0;
      }
    }
    if (step.reboot_acked_ms == 0) {
      step.reboot_attempt_ms = now;
      Persist();
      if (!Flush()) {
        step.reboot_attempt_ms = 0;
        return false;
      }
      Result<void> sent;
      std::string call;
      if (policy.strategy == "talos-upgrade") {
        // The machine boots from its disk: a rollback installs the previous
        // release's image too (a Reboot would boot the new install again).
        call = "Upgrade";
        std::string image = machine.installer_image;
        if (step.rollback) {
          auto previous = machine.installer_images.find(step.to_version);
          if (previous == machine.installer_images.end()) {
            step.reboot_attempt_ms = 0;
            FailStep(step,
                     "cannot roll back: the repo has no installer image for release " +
                         step.to_version + " (spec.releases[].installerImage) to Upgrade to",
                     input);
            Persist();
            return true;
          }
          image = previous->second;
        }
        sent = client_->Upgrade(node, image, true);
      } else {
        call = "Reboot";
        sent = client_->Reboot(node, talos::RebootMode::kDefault);
      }
      if (!sent) {
        step.reboot_attempt_ms = 0;
        step.last_error = sent.error().message;
        log->error("machine={} {} failed: {}", machine.name, call, sent.error().message);
        if (now - step.phase_since_ms > timeout_ms) {
          FailStep(step, call + " not accepted within " + Duration(policy.gate_timeout) + ": " +
                             sent.error().message,
                   input);
          Persist();
          return true;
        }
        Persist();
        return false;
      }
      step.reboot_acked_ms = Ms(clock_->Now());
      log->info("machine={} {} sent ({} -> {})", machine.name, call, step.from_version,
                step.to_version);
    }
    step.phase = "gates";
    step.phase_since_ms = now;
    auto gates = GatesFor(step, policy);
    step.gate = gates.front();
    step.gate_since_ms = now;
    Persist();
    return false;
  }

  // Gates, in order; each has its own timeout.
  auto gates = GatesFor(step, policy);
  bool changed = false;
  while (true) {
    if (step.gate.empty()) {
      step.gate = gates.front();
      step.gate_since_ms = now;
      changed = true;
    }
    std::string why = CheckGate(step.gate, step, machine, input, observed);
    if (!why.empty()) {
      step.last_error = why;
      if (now - step.gate_since_ms > timeout_ms) {
        FailStep(step,
                 "gate " + step.gate + " not passed within " + Duration(policy.gate_timeout) +
                     ": " + why,
                 input);
        Persist();
        return true;
      }
      if (changed) {
        Persist();
      }
      return false;
    }
    step.gates_passed.push_back(step.gate);
    auto it = std::find(gates.begin(), gates.end(), step.gate);
    changed = true;
    if (it == gates.end() || std::next(it) == gates.end()) {
      break;
    }
    step.gate = *std::next(it);
    step.gate_since_ms = now;
    step.last_error.clear();
  }
  // Done.
  double seconds = static_cast<double>(now - step.reboot_attempt_ms) / 1000.0;
  if (o != nullptr && o->up_since) {
    seconds = static_cast<double>(Ms(*o->up_since) - step.reboot_attempt_ms) / 1000.0;
  }
  report.boot_durations.emplace_back(manifests::RoleName(machine.role), std::max(0.0, seconds));
  state_.previous[step.machine] = step.from_version;
  ++state_.completed_steps;
  if (step.canary && !step.rollback) {
    state_.soak_until_ms = now + (policy.canary_soak ? policy.canary_soak->count() * 1000 : 0);
    state_.soak_machine = step.machine;
  }
  log->info("machine={} {} {} -> {} done: gates {} passed", machine.name,
            step.rollback ? "rollback" : "step", step.from_version, step.to_version,
            step.gates_passed.size());
  return true;
}

void Sequencer::StartStep(const RolloutMachine& machine, bool canary, bool* pins_changed) {
  RolloutStep step;
  step.machine = machine.name;
  {
    std::lock_guard lock(pins_mu_);
    auto pin = state_.pins.find(machine.name);
    step.from_version = pin == state_.pins.end() ? "" : pin->second;
    state_.pins[machine.name] = machine.desired_version;
  }
  step.to_version = machine.desired_version;
  step.canary = canary;
  step.started_ms = step.phase_since_ms = Ms(clock_->Now());
  state_.steps.push_back(step);
  *pins_changed = true;
  Logger("rollout")->info("machine={} step starts: {} -> {}{}", machine.name, step.from_version,
                          step.to_version, canary ? " (canary)" : "");
}

RolloutReport Sequencer::Reconcile(const RolloutInput& input, const ObservedMachines& observed,
                                   bool* pins_changed) {
  static auto log = Logger("rollout");
  *pins_changed = false;
  RolloutReport report;
  TimePoint now_tp = clock_->Now();
  int64_t now = Ms(now_tp);
  const auto& policy = input.policy;
  std::map<std::string, const RolloutMachine*> by_name;
  for (const auto& m : input.machines) {
    by_name[m.name] = &m;
  }
  bool dirty = false;

  // A commit that changes desired versions starts a new rollout: it clears
  // the halt, the failures and the canary.
  std::string target = TargetSignature(input);
  if (state_.target != target) {
    if (!state_.target.empty() && (!state_.halted_reason.empty() || !state_.failed.empty())) {
      log->info("desired versions changed: clearing the halt ({})", state_.halted_reason);
    }
    state_.target = target;
    state_.halted_reason.clear();
    state_.failed.clear();
    state_.canary_done = false;
    state_.soak_until_ms = 0;
    state_.soak_machine.clear();
    dirty = true;
  }
  // Machines gone from the repo.
  {
    std::lock_guard lock(pins_mu_);
    for (auto it = state_.pins.begin(); it != state_.pins.end();) {
      if (!by_name.contains(it->first)) {
        it = state_.pins.erase(it);
        *pins_changed = dirty = true;
      } else {
        ++it;
      }
    }
  }
  std::erase_if(state_.steps, [&](const RolloutStep& s) { return !by_name.contains(s.machine); });

  bool all_polled = std::all_of(input.machines.begin(), input.machines.end(), [&](const auto& m) {
    const ObservedMachine* o = Find(observed, m.name);
    return o != nullptr && o->api.has_value();
  });

  // Pins for machines that have none: what they run, or (never seen since
  // start: new or not booted) what they should run.
  if (all_polled) {
    std::lock_guard lock(pins_mu_);
    for (const auto& m : input.machines) {
      if (state_.pins.contains(m.name)) {
        continue;
      }
      const ObservedMachine* o = Find(observed, m.name);
      std::string pin = o->ApiUp() && !o->api->version.empty() ? o->api->version : m.desired_version;
      if (!o->ApiUp()) {
        auto served = input.served_versions.find(m.name);
        if (served != input.served_versions.end() && o->ipxe) {
          pin = served->second;  // it is booting what we serve
        }
      }
      state_.pins[m.name] = pin;
      *pins_changed = dirty = true;
    }
  }
  if (dirty) {
    Persist();
  }

  if (all_polled) {
    Bootstrap(input, observed, report);
  } else {
    report.bootstrap_status = "waiting for the first Talos API poll of every machine";
  }

  // Steps in flight.
  for (size_t i = 0; i < state_.steps.size();) {
    RolloutStep& step = state_.steps[i];
    const RolloutMachine& machine = *by_name.at(step.machine);
    size_t before = state_.steps.size();
    bool finished = Advance(step, machine, input, observed, report);
    if (state_.steps.size() != before) {
      *pins_changed = true;  // a rollback step was appended
    }
    if (finished) {
      state_.steps.erase(state_.steps.begin() + static_cast<long>(i));
      Persist();
    } else {
      ++i;
    }
  }

  // New steps.
  std::set<std::string> in_step;
  for (const auto& s : state_.steps) {
    in_step.insert(s.machine);
  }
  auto pins = Pins();
  auto needs_step = [&](const RolloutMachine& m) {
    auto pin = pins.find(m.name);
    return pin != pins.end() && pin->second != m.desired_version && !m.paused &&
           !state_.failed.contains(m.name) && !in_step.contains(m.name);
  };
  std::vector<const RolloutMachine*> pending_cps, pending_workers;
  for (const auto& m : input.machines) {
    if (needs_step(m)) {
      (IsControlPlane(m) ? pending_cps : pending_workers).push_back(&m);
    }
  }
  bool any_pending = !pending_cps.empty() || !pending_workers.empty();
  bool cp_in_step = false, worker_in_step = false;
  for (const auto& s : state_.steps) {
    (IsControlPlane(*by_name.at(s.machine)) ? cp_in_step : worker_in_step) = true;
  }
  bool cps_present = std::any_of(input.machines.begin(), input.machines.end(),
                                 [](const auto& m) { return IsControlPlane(m); });
  std::string blocked;
  if (!state_.halted_reason.empty()) {
    report.state = "halted";
  } else if (!any_pending) {
    report.state = state_.steps.empty() ? "idle" : "progressing";
  } else if (!all_polled) {
    blocked = "waiting for the first Talos API poll of every machine";
  } else if (cps_present && state_.bootstrap.done_ms == 0) {
    blocked = "waiting for the cluster's bootstrap";
  } else if (policy.paused) {
    report.state = "paused";
    blocked = "spec.upgrade.paused is true";
  } else if (policy.window_open && !policy.window_open(now_tp)) {
    report.state = "waiting_window";
    blocked = "outside the maintenance window";
  } else if (state_.soak_until_ms != 0 && !state_.canary_done) {
    const ObservedMachine* o = Find(observed, state_.soak_machine);
    if (o == nullptr || !o->Ready(false)) {
      state_.failed[state_.soak_machine] = "canary became unhealthy during the soak";
      state_.halted_reason = "machine " + state_.soak_machine +
                             " failed: canary became unhealthy during the soak";
      log->error("canary {} became unhealthy during the soak: rollout halted", state_.soak_machine);
      Persist();
      report.state = "halted";
    } else if (now < state_.soak_until_ms) {
      report.state = "soaking";
      blocked = "canary " + state_.soak_machine + " soaking for " +
                std::to_string((state_.soak_until_ms - now + 999) / 1000) + "s more";
    } else {
      state_.canary_done = true;
      Persist();
    }
  }
  if (report.state != "halted" && blocked.empty() && any_pending) {
    report.state = "progressing";
    if (cp_in_step) {
      blocked = "control plane " + state_.steps.front().machine + " is stepping";
    } else if (!pending_cps.empty()) {
      if (worker_in_step) {
        blocked = "waiting for worker steps to finish before a control plane";
      } else {
        std::string why;
        if (!EtcdToleratesOneDown(ViewEtcd(input.machines, observed), &why)) {
          blocked = "control plane " + pending_cps.front()->name + " waits: " + why;
        } else {
          StartStep(*pending_cps.front(), false, pins_changed);
          Persist();
        }
      }
    } else if (policy.canary_soak && !state_.canary_done) {
      if (!worker_in_step && state_.soak_until_ms == 0) {
        StartStep(*pending_workers.front(), true, pins_changed);
        Persist();
      }
    } else {
      std::set<std::string> unavailable(in_step.begin(), in_step.end());
      for (const auto& m : input.machines) {
        if (!IsControlPlane(m)) {
          const ObservedMachine* o = Find(observed, m.name);
          if (o == nullptr || !o->Ready(false)) {
            unavailable.insert(m.name);
          }
        }
      }
      for (const auto* m : pending_workers) {
        if (static_cast<int>(unavailable.size()) >= policy.max_unavailable_worker) {
          blocked = std::to_string(unavailable.size()) + " worker(s) unavailable (maxUnavailable " +
                    std::to_string(policy.max_unavailable_worker) + ")";
          break;
        }
        StartStep(*m, false, pins_changed);
        unavailable.insert(m->name);
      }
      Persist();
    }
  }
  if (report.state == "idle" && !state_.steps.empty()) {
    report.state = "progressing";
  }
  report.blocked_reason = blocked;
  report.halted_reason = state_.halted_reason;
  report.steps = state_.steps;
  report.bootstrap = state_.bootstrap;
  report.completed_steps = state_.completed_steps;
  for (const auto& s : state_.steps) {
    TimePoint started{std::chrono::milliseconds(s.started_ms)};
    if (!report.step_started || started < *report.step_started) {
      report.step_started = started;
    }
  }

  Flush();

  // Per machine.
  pins = Pins();
  in_step.clear();
  for (const auto& s : state_.steps) {
    in_step.insert(s.machine);
  }
  for (const auto& m : input.machines) {
    RolloutReport::Machine r;
    r.name = m.name;
    r.role = manifests::RoleName(m.role);
    r.desired_version = m.desired_version;
    auto served = input.served_versions.find(m.name);
    r.served_version = served == input.served_versions.end() ? "" : served->second;
    const ObservedMachine* o = Find(observed, m.name);
    bool cp = IsControlPlane(m);
    if (o != nullptr) {
      r.observed_version = o->ApiUp() ? o->api->version : "";
      r.ready = o->Ready(cp);
      if (o->ipxe) {
        r.last_boot = o->ipxe->at;
      }
    }
    if (auto f = state_.failed.find(m.name); f != state_.failed.end()) {
      r.phase = "failed";
      r.failed_reason = f->second;
      ++report.failed;
    } else if (in_step.contains(m.name)) {
      r.phase = "upgrading";
      ++report.in_progress;
    } else if (o == nullptr || (!o->api && !o->ipxe)) {
      r.phase = "unknown";
    } else if (!o->ApiUp()) {
      r.phase = o->ipxe && (!o->down_since || o->ipxe->at >= *o->down_since) ? "booting" : "down";
    } else if (o->api->version != m.desired_version) {
      r.phase = "outdated";
    } else {
      r.phase = "running";
    }
    if (r.phase != "failed" && r.phase != "upgrading") {
      if (r.observed_version == m.desired_version && r.ready) {
        ++report.done;
      } else {
        ++report.pending;
      }
    }
    report.machines.push_back(std::move(r));
  }
  return report;
}

}  // namespace ironboot::reconcilers
