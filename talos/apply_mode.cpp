#include "talos/apply_mode.h"

#include <array>
#include <charconv>
#include <utility>

namespace ironboot::talos {

namespace {

// CanApplyImmediate's list (v1.10.0 - v1.14.0-alpha.1, unchanged in between):
// the fields it copies from the running config before comparing.
constexpr std::array<std::string_view, 2> kLiveTopLevel = {"debug", "cluster"};
constexpr std::array<std::string_view, 18> kLiveMachine = {"ca",
                                                           "acceptedCAs",
                                                           "time",
                                                           "certSANs",
                                                           "install",
                                                           "network",
                                                           "sysfs",
                                                           "sysctls",
                                                           "logging",
                                                           "controlPlane",
                                                           "kubelet",
                                                           "kernel",
                                                           "registries",
                                                           "pods",
                                                           "seccompProfiles",
                                                           "nodeAnnotations",
                                                           "nodeLabels",
                                                           "nodeTaints"};
constexpr std::array<std::string_view, 5> kLiveFeatures = {
    "kubernetesTalosAPIAccess", "kubePrism", "hostDNS", "imageCache", "nodeAddressSortAlgorithm"};

struct Version {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string prerelease;  // "rc.1", "" for a release
  friend bool operator==(const Version&, const Version&) = default;
};

bool TakeNumber(std::string_view& s, int* out) {
  if (s.empty() || s.front() < '0' || s.front() > '9') {
    return false;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec != std::errc() || p == s.data()) {
    return false;
  }
  s.remove_prefix(static_cast<size_t>(p - s.data()));
  return true;
}

// "v1.11.3", "1.12", "v1.14.0-rc.1", "v1.13.9+dirty" (build metadata ignored).
Result<Version> ParseVersion(std::string_view text, std::string_view which) {
  auto bad = [&] {
    return Fail(ErrorCode::kInvalid, std::string(which) + " \"" + std::string(text) +
                                         "\" is not a version (want vMAJOR.MINOR.PATCH, e.g. "
                                         "v1.11.3)");
  };
  std::string_view s = text;
  if (!s.empty() && s.front() == 'v') {
    s.remove_prefix(1);
  }
  if (auto plus = s.find('+'); plus != std::string_view::npos) {
    s = s.substr(0, plus);
  }
  Version v;
  if (auto dash = s.find('-'); dash != std::string_view::npos) {
    v.prerelease = std::string(s.substr(dash + 1));
    s = s.substr(0, dash);
    if (v.prerelease.empty()) {
      return bad();
    }
  }
  if (!TakeNumber(s, &v.major) || s.empty() || s.front() != '.') {
    return bad();
  }
  s.remove_prefix(1);
  if (!TakeNumber(s, &v.minor)) {
    return bad();
  }
  if (!s.empty()) {
    if (s.front() != '.') {
      return bad();
    }
    s.remove_prefix(1);
    if (!TakeNumber(s, &v.patch) || !s.empty()) {
      return bad();
    }
  }
  return v;
}

bool IsSet(const Value* v) {
  return v != nullptr && !v->IsNull();
}

// Go's `new.X = current.X`: the desired config takes the running value of
// `key`, absent when the running config has none.
void CopyField(Value& desired, const Value& running, std::string_view key) {
  if (const Value* r = running.Find(key)) {
    desired.Set(key, *r);
  } else {
    desired.Erase(key);
  }
}

std::string Join(const std::vector<std::string>& fields, size_t max) {
  std::string out;
  for (size_t i = 0; i < fields.size() && i < max; ++i) {
    out += (i == 0 ? "" : ", ") + fields[i];
  }
  if (fields.size() > max) {
    out += " and " + std::to_string(fields.size() - max) + " more";
  }
  return out;
}

size_t CountChanges(const ConfigDiff& diff) {
  size_t n = 0;
  for (const auto& d : diff.documents) {
    n += d.kind == ChangeKind::kChanged ? d.fields.size() : 1;
  }
  return n;
}

std::string Changes(size_t n) {
  return std::to_string(n) + (n == 1 ? " config change" : " config changes");
}

}  // namespace

std::string_view ApplyModeName(ApplyMode mode) {
  switch (mode) {
    case ApplyMode::kNoChange:
      return "no-change";
    case ApplyMode::kApplyNow:
      return "apply-now";
    case ApplyMode::kNeedsReboot:
      return "needs-reboot";
    case ApplyMode::kRelease:
      return "release";
  }
  return "no-change";
}

Result<LiveApplyRule> LiveApplyRuleFor(std::string_view talos_version, std::string_view which) {
  auto v = ParseVersion(talos_version, which);
  if (!v) {
    return std::unexpected(v.error());
  }
  if (v->major != 1 || v->minor < 10) {
    return Fail(ErrorCode::kInvalid,
                std::string(which) + " \"" + std::string(talos_version) +
                    "\": ironboot knows which config changes need a reboot for Talos v1.10 "
                    "and later only");
  }
  if (v->minor < 14) {
    return LiveApplyRule::kCanApplyImmediate;
  }
  // 995bc30d5 ("feat: drop apply config method reboot") landed in v1.14.0-alpha.2.
  if (v->minor == 14 && v->patch == 0 &&
      (v->prerelease == "alpha.0" || v->prerelease == "alpha.1")) {
    return LiveApplyRule::kCanApplyImmediate;
  }
  return LiveApplyRule::kEverything;
}

std::vector<std::string> FieldsNeedingReboot(LiveApplyRule rule,
                                             const MachineConfigDocuments& running,
                                             const MachineConfigDocuments& desired) {
  if (rule == LiveApplyRule::kEverything) {
    return {};
  }
  const Value* current = running.V1Alpha1();
  const Value* next = desired.V1Alpha1();
  if (current == nullptr || next == nullptr) {
    return {"v1alpha1"};
  }
  Value masked = *next;
  for (auto key : kLiveTopLevel) {
    CopyField(masked, *current, key);
  }
  // Talos copies machine.* (and machine.features.*) fields only when both
  // configs have the section; otherwise the whole section is compared.
  Value* machine = masked.Find("machine");
  const Value* current_machine = current->Find("machine");
  if (IsSet(machine) && IsSet(current_machine) && machine->IsMap() && current_machine->IsMap()) {
    for (auto key : kLiveMachine) {
      CopyField(*machine, *current_machine, key);
    }
    Value* features = machine->Find("features");
    const Value* current_features = current_machine->Find("features");
    if (IsSet(features) && IsSet(current_features) && features->IsMap() &&
        current_features->IsMap()) {
      for (auto key : kLiveFeatures) {
        CopyField(*features, *current_features, key);
      }
    }
  }
  std::vector<std::string> out;
  for (auto& change : DiffDocument(*current, masked)) {
    out.push_back(std::move(change.path));
  }
  return out;
}

Result<ApplyDecision> DecideApplyMode(const MachineConfigState& running,
                                      const MachineConfigState& desired) {
  auto running_version = ParseVersion(running.talos_version, "running Talos version");
  if (!running_version) {
    return std::unexpected(running_version.error());
  }
  auto desired_version = ParseVersion(desired.talos_version, "desired Talos version");
  if (!desired_version) {
    return std::unexpected(desired_version.error());
  }
  auto running_docs = ParseMachineConfig(running.config, "running config");
  if (!running_docs) {
    return std::unexpected(running_docs.error());
  }
  auto desired_docs = ParseMachineConfig(desired.config, "desired config");
  if (!desired_docs) {
    return std::unexpected(desired_docs.error());
  }
  if (desired_docs->V1Alpha1() == nullptr) {
    return Fail(ErrorCode::kInvalid,
                "desired config has no v1alpha1 document (version: v1alpha1, machine, cluster); "
                "Talos refuses to apply a config without one");
  }

  ApplyDecision decision;
  decision.diff = DiffConfigs(*running_docs, *desired_docs);
  size_t changes = CountChanges(decision.diff);

  if (*running_version != *desired_version) {
    decision.mode = ApplyMode::kRelease;
    decision.reason = "Talos " + running.talos_version + " -> " + desired.talos_version +
                      ": the upgrade step " +
                      (changes == 0 ? "(config unchanged)" : "also carries " + Changes(changes));
    return decision;
  }
  if (decision.diff.Empty()) {
    decision.reason = "config and Talos " + running.talos_version + " unchanged";
    return decision;
  }
  auto rule = LiveApplyRuleFor(running.talos_version, "running Talos version");
  if (!rule) {
    return std::unexpected(rule.error());
  }
  decision.reboot_fields = FieldsNeedingReboot(*rule, *running_docs, *desired_docs);
  if (decision.reboot_fields.empty()) {
    decision.mode = ApplyMode::kApplyNow;
    decision.reason =
        "Talos " + running.talos_version + " applies " + Changes(changes) + " without a reboot";
  } else {
    decision.mode = ApplyMode::kNeedsReboot;
    decision.reason = "Talos " + running.talos_version + " changes " +
                      Join(decision.reboot_fields, 5) + " only with a reboot";
  }
  return decision;
}

}  // namespace ironboot::talos
