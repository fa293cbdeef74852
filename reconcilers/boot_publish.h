#pragma once
// reconcilers/: the boot reconciler's decision, a pure function: given the
// newly rendered plan, which release assets verified, and the plan served
// now, what to publish. Unverified bytes are never served: a machine whose
// release failed keeps its previous group, profile, config and assets (or is
// left out if it had none), and every other machine moves on.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "manifests/boot_plan.h"

namespace ironboot::reconcilers {

// A plan as published: what the boot server serves.
struct PublishedPlan {
  std::string revision;
  manifests::BootPlan plan;
  // Served path below /assets/ -> verified file.
  std::map<std::string, std::filesystem::path> assets;
};

struct AssetOutcome {
  std::map<std::string, std::filesystem::path> verified;  // served path -> file
  // "v1.12.0/amd64" -> why its assets are not available.
  std::map<std::string, std::string> failed_releases;
};

struct HeldBack {
  std::string machine;
  std::string release;  // "v1.12.0/amd64"
  std::string reason;
  bool kept_previous = false;  // false: not served at all (it had no previous plan)
};

struct PublishDecision {
  PublishedPlan published;
  std::vector<HeldBack> held_back;
};

std::string ReleaseKey(const std::string& version, const std::string& arch);

// `previous` may be null (nothing served yet).
PublishDecision DecidePublish(const std::string& revision, const manifests::BootPlan& desired,
                              const AssetOutcome& assets, const PublishedPlan* previous);

}  // namespace ironboot::reconcilers
