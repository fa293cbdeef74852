#include "reconcilers/observed_state.h"

#include "bootserver/labels.h"
#include "bootserver/mac.h"

namespace ironboot::reconcilers {

namespace {

std::string HostOf(const std::string& address) {
  return address.substr(0, address.find('/'));
}

bool Succeeded(const bootserver::Reply& reply) {
  auto code = reply.res.result_int();
  return code == 200 || code == 206;
}

}  // namespace

bool ObservedMachine::ServicesHealthy(bool control_plane, std::string* why) const {
  if (!api) {
    if (why != nullptr) {
      *why = "not polled yet";
    }
    return false;
  }
  std::vector<std::string> wanted = {"apid", "kubelet"};
  if (control_plane) {
    wanted.push_back("etcd");
  }
  for (const auto& name : wanted) {
    const talos::ServiceStatus* found = nullptr;
    for (const auto& s : api->services) {
      if (s.id == name) {
        found = &s;
      }
    }
    if (found == nullptr || !found->healthy) {
      if (why != nullptr) {
        *why = found == nullptr ? "service " + name + " not listed"
                                : "service " + name + " not healthy (" + found->state +
                                      (found->last_message.empty() ? "" : ": " + found->last_message) +
                                      ")";
      }
      return false;
    }
  }
  return true;
}

std::optional<AssetKind> ClassifyAssetPath(std::string_view path) {
  constexpr std::string_view kPrefix = "/assets/talos/";
  if (path.substr(0, kPrefix.size()) != kPrefix) {
    return std::nullopt;
  }
  path.remove_prefix(kPrefix.size());
  auto slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0) {
    return std::nullopt;
  }
  std::string version = "v" + std::string(path.substr(0, slash));
  auto file = path.substr(path.rfind('/') + 1);
  if (file == "vmlinuz") {
    return AssetKind{version, "kernel"};
  }
  if (file == "initramfs.xz") {
    return AssetKind{version, "initramfs"};
  }
  return std::nullopt;
}

void ObservedState::SetPlan(std::shared_ptr<const manifests::BootPlan> plan) {
  std::lock_guard lock(mu_);
  plan_ = std::move(plan);
  machine_of_mac_.clear();
  machine_of_address_.clear();
  version_of_machine_.clear();
  if (!plan_) {
    return;
  }
  for (const auto& m : plan_->machines) {
    for (const auto& mac : m.macs) {
      machine_of_mac_[mac] = m.name;
    }
    if (!m.address.empty()) {
      machine_of_address_[HostOf(m.address)] = m.name;
    }
    version_of_machine_[m.name] = m.talos_version;
  }
}

std::string ObservedState::MachineOfAddressLocked(const std::string& address) const {
  if (auto it = last_ipxe_address_.find(address); it != last_ipxe_address_.end()) {
    return it->second;
  }
  if (auto it = machine_of_address_.find(address); it != machine_of_address_.end()) {
    return it->second;
  }
  return "";
}

void ObservedState::OnRequest(const bootserver::HttpRequest& req, const bootserver::Reply& reply,
                              TimePoint now) {
  if (!Succeeded(reply) || req.message.method() != bootserver::http::verb::get) {
    return;
  }
  if (reply.handler == "ipxe" || reply.handler == "config") {
    auto parsed = bootserver::LabelsFromQuery(req.raw_query());
    auto mac_label = parsed.labels.find("mac");
    if (mac_label == parsed.labels.end()) {
      return;
    }
    auto mac = bootserver::NormalizeMac(mac_label->second);
    if (!mac) {
      return;
    }
    std::lock_guard lock(mu_);
    auto it = machine_of_mac_.find(*mac);
    if (it == machine_of_mac_.end()) {
      return;
    }
    const std::string& machine = it->second;
    BootFetch fetch{now, req.client, version_of_machine_[machine]};
    auto& observed = machines_[machine];
    if (reply.handler == "ipxe") {
      observed.ipxe = fetch;
      observed.ipxe_group = reply.group;
      last_ipxe_address_[req.client] = machine;
    } else {
      observed.config = fetch;
    }
    return;
  }
  if (reply.handler == "assets") {
    auto kind = ClassifyAssetPath(req.path());
    if (!kind) {
      return;
    }
    std::lock_guard lock(mu_);
    std::string machine = MachineOfAddressLocked(req.client);
    if (machine.empty()) {
      return;
    }
    BootFetch fetch{now, req.client, kind->version};
    (kind->kind == "kernel" ? machines_[machine].kernel : machines_[machine].initramfs) = fetch;
  }
}

void ObservedState::RecordApi(const std::string& machine, ApiObservation observation) {
  std::lock_guard lock(mu_);
  auto& m = machines_[machine];
  bool was_up = m.ApiUp();
  if (observation.up && (!was_up || !m.up_since)) {
    m.up_since = observation.at;
    m.down_since.reset();
  } else if (!observation.up && (was_up || !m.down_since)) {
    m.down_since = observation.at;
    m.up_since.reset();
  }
  if (!observation.up) {
    m.last_down = observation.at;
  }
  m.api = std::move(observation);
}

ObservedMachines ObservedState::Snapshot() const {
  std::lock_guard lock(mu_);
  return machines_;
}

}  // namespace ironboot::reconcilers
