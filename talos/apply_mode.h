#pragma once
// talos/: how a machine gets the change from its running config and Talos
// version to the desired ones, decided the way the node itself decides
// whether ApplyConfiguration may change a config without a reboot:
//
// - Talos v1.10.0 to v1.14.0-alpha.1: `CanApplyImmediate`
//   (internal/app/machined/pkg/runtime/v1alpha1/v1alpha1_runtime.go, the same
//   rule in every release of those minors). It looks at the v1alpha1 document
//   only; other documents (HostnameConfig, LinkConfig, ...) never force a
//   reboot. It copies these fields of the running config into the desired one
//   and requires the rest to be equal:
//     debug, cluster (all of it);
//     machine.{ca, acceptedCAs, time, certSANs, install, network, sysfs,
//       sysctls, logging, controlPlane, kubelet, kernel, registries, pods,
//       seccompProfiles, nodeAnnotations, nodeLabels, nodeTaints} when both
//       configs have a `machine` section;
//     machine.features.{kubernetesTalosAPIAccess, kubePrism, hostDNS,
//       imageCache, nodeAddressSortAlgorithm} when both have `features`.
//   Anything else (persist, machine.type, token, disks, files, env,
//   systemDiskEncryption, udev, baseRuntimeSpecOverrides,
//   features.{rbac, stableHostname, apidCheckExtKeyUsage, diskQuotaSupport},
//   or a whole machine/features section only one side has) needs a reboot:
//   NO_REBOOT is refused with InvalidArgument.
// - Talos v1.14.0-alpha.2 and later (commit 995bc30d5): the check is gone and
//   NO_REBOOT accepts every change.
//
// Pure functions over strings; nothing here throws or touches the network.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "talos/config_diff.h"

namespace ironboot::talos {

enum class ApplyMode {
  kNoChange,     // same Talos version, configs equal (see DiffConfigs): nothing to do
  kApplyNow,     // ApplyConfiguration(mode NO_REBOOT); the node takes it live
  kNeedsReboot,  // ApplyConfiguration(mode STAGED), then a reboot as a rollout step
  kRelease,      // the Talos version changes: the upgrade path; a config change
                 // that comes with it goes in the same step
};
// "no-change", "apply-now", "needs-reboot", "release": the words `plan` prints.
std::string_view ApplyModeName(ApplyMode mode);

// The rule a Talos version applies to ApplyConfiguration(NO_REBOOT).
enum class LiveApplyRule {
  kCanApplyImmediate,  // v1.10.0 - v1.14.0-alpha.1: only the fields listed above
  kEverything,         // v1.14.0-alpha.2 and later: every change
};

// The rule of a Talos version "vMAJOR.MINOR[.PATCH][-pre]" ("v" optional),
// decided from major.minor, except that v1.14.0-alpha.0/alpha.1 still had
// CanApplyImmediate. Minors after 1.14 are assumed to keep 1.14's rule.
// Fails (kInvalid) on text that is not a version, on Talos before v1.10 (its
// rule was not checked) and on a major other than 1; `which` names the
// version in the message ("running Talos version").
Result<LiveApplyRule> LiveApplyRuleFor(std::string_view talos_version,
                                       std::string_view which = "Talos version");

// The paths in the v1alpha1 document (e.g. "persist", "machine.files[0]",
// "machine.features.rbac") that `rule` will not change without a reboot,
// going from `running` to `desired`; empty when everything applies live.
// Under kCanApplyImmediate a config without a v1alpha1 document on either
// side gives {"v1alpha1"} (Talos: "current config is not v1alpha1").
std::vector<std::string> FieldsNeedingReboot(LiveApplyRule rule,
                                             const MachineConfigDocuments& running,
                                             const MachineConfigDocuments& desired);

// What a machine runs, or should run.
struct MachineConfigState {
  std::string talos_version;  // "v1.11.3"
  std::string config;         // the machine config, YAML (one or more documents)
};

struct ApplyDecision {
  ApplyMode mode = ApplyMode::kNoChange;
  // Every config difference, running -> desired (also for kRelease, whose
  // upgrade step carries it).
  ConfigDiff diff;
  // kNeedsReboot only: why, as FieldsNeedingReboot() paths.
  std::vector<std::string> reboot_fields;
  // One line for `plan` and logs, e.g. "Talos v1.12.11 changes persist,
  // machine.files[0] only with a reboot". Names fields, never values.
  std::string reason;
};

// Decides how `running` becomes `desired`. A different Talos version (any
// part of it, "v" optional) is kRelease whatever the configs say; otherwise
// equal configs are kNoChange and a config change is classified by the
// running version's rule (the node that receives the call decides).
// Fails (kInvalid), naming "running" or "desired", when a version is not a
// version, a config does not parse (with the YAML error and its line), the
// desired config has no v1alpha1 document (every Talos refuses that outside
// maintenance), or a config change needs the rule of a version
// LiveApplyRuleFor() does not know.
Result<ApplyDecision> DecideApplyMode(const MachineConfigState& running,
                                      const MachineConfigState& desired);

}  // namespace ironboot::talos
