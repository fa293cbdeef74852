#pragma once
// controller/: what `ironboot plan` shows, a pure diff of two boot plans per
// machine: added, removed, or changed (release, kernel args, machine config
// as a line diff). Secret values in configs (keys named *key, *token,
// *secret, and PEM private-key blocks) are masked on both sides before diffing.

#include <string>

#include "manifests/boot_plan.h"

namespace ironboot::controller {

struct PlanSummary {
  int added = 0;
  int removed = 0;
  int changed = 0;
  int unchanged = 0;
  std::string text;  // human-readable report, one section per machine that changes
};

PlanSummary DiffPlans(const manifests::BootPlan& from, const manifests::BootPlan& to);

// A machine config with secret values replaced by "***" (line-based).
std::string MaskSecrets(const std::string& config);

// A line diff ("-"/"+" lines with two lines of context, "@@" between hunks).
std::string LineDiff(const std::string& from, const std::string& to);

}  // namespace ironboot::controller
