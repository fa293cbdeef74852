#include "reconcilers/boot_publish.h"

#include <algorithm>
#include <set>

namespace ironboot::reconcilers {
using manifests::BootPlan;
using manifests::MachineSummary;

std::string ReleaseKey(const std::string& version, const std::string& arch) {
  return version + "/" + arch;
}

namespace {

bool HasMac(const bootserver::Group& g, const std::set<std::string>& macs) {
  auto it = g.selector.find("mac");
  return it != g.selector.end() && macs.count(it->second) != 0;
}

// Removes a machine's groups, configs and (if unused) profile from `plan`.
void RemoveMachine(BootPlan& plan, const MachineSummary& m) {
  std::set<std::string> macs(m.macs.begin(), m.macs.end());
  std::erase_if(plan.groups, [&](const bootserver::Group& g) { return HasMac(g, macs); });
  for (const auto& mac : m.macs) {
    plan.machine_configs.erase(mac);
  }
  bool used = std::any_of(plan.groups.begin(), plan.groups.end(),
                          [&](const bootserver::Group& g) { return g.profile == m.profile; });
  if (!used) {
    std::erase_if(plan.profiles, [&](const bootserver::Profile& p) { return p.id == m.profile; });
  }
  std::erase_if(plan.machines, [&](const MachineSummary& s) { return s.name == m.name; });
}

// Copies a machine's groups, profile, configs and assets from `from` into `to`.
void CopyMachine(const PublishedPlan& from, const MachineSummary& m, PublishedPlan& to) {
  std::set<std::string> macs(m.macs.begin(), m.macs.end());
  for (const auto& g : from.plan.groups) {
    if (HasMac(g, macs)) {
      to.plan.groups.push_back(g);
    }
  }
  for (const auto& mac : m.macs) {
    if (auto it = from.plan.machine_configs.find(mac); it != from.plan.machine_configs.end()) {
      to.plan.machine_configs[mac] = it->second;
    }
  }
  for (const auto& p : from.plan.profiles) {
    if (p.id != m.profile) {
      continue;
    }
    bool present = std::any_of(to.plan.profiles.begin(), to.plan.profiles.end(),
                               [&](const bootserver::Profile& q) { return q.id == p.id; });
    if (!present) {
      to.plan.profiles.push_back(p);
    }
    // The assets its kernel and initrds point at.
    std::vector<std::string> urls = p.initrd;
    urls.push_back(p.kernel);
    for (const auto& url : urls) {
      constexpr std::string_view kPrefix = "/assets/";
      size_t at = url.find(kPrefix);
      if (at == std::string::npos) {
        continue;
      }
      std::string served = url.substr(at + kPrefix.size());
      if (auto a = from.assets.find(served); a != from.assets.end()) {
        to.assets[served] = a->second;
      }
    }
  }
  to.plan.machines.push_back(m);
}

}  // namespace

PublishDecision DecidePublish(const std::string& revision, const BootPlan& desired,
                              const AssetOutcome& assets, const PublishedPlan* previous) {
  PublishDecision d;
  d.published.revision = revision;
  d.published.plan = desired;
  d.published.assets = assets.verified;
  for (const auto& m : desired.machines) {
    auto failed = assets.failed_releases.find(ReleaseKey(m.talos_version, m.arch));
    if (failed == assets.failed_releases.end()) {
      continue;
    }
    HeldBack hb{m.name, failed->first, failed->second, false};
    RemoveMachine(d.published.plan, m);
    if (previous != nullptr) {
      auto prev = std::find_if(previous->plan.machines.begin(), previous->plan.machines.end(),
                               [&](const MachineSummary& s) { return s.name == m.name; });
      if (prev != previous->plan.machines.end()) {
        CopyMachine(*previous, *prev, d.published);
        hb.kept_previous = true;
      }
    }
    d.held_back.push_back(std::move(hb));
  }
  // Releases no machine is served with any more are not published.
  std::erase_if(d.published.plan.releases, [&](const manifests::PlanRelease& r) {
    return assets.failed_releases.count(ReleaseKey(r.version, r.arch)) != 0;
  });
  auto by_id = [](const auto& a, const auto& b) { return a.id < b.id; };
  std::sort(d.published.plan.groups.begin(), d.published.plan.groups.end(), by_id);
  std::sort(d.published.plan.profiles.begin(), d.published.plan.profiles.end(), by_id);
  std::sort(d.published.plan.machines.begin(), d.published.plan.machines.end(),
            [](const MachineSummary& a, const MachineSummary& b) { return a.name < b.name; });
  return d;
}

}  // namespace ironboot::reconcilers
