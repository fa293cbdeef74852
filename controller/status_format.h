#pragma once
// controller/: the human-readable form of a GitOps server's GET /status
// document (GitOpsController::Status() plus the "fleet" section of
// UpgradeLoop::Status()), as `ironboot status` prints it. Pure: no I/O.

#include <string>

#include <nlohmann/json.hpp>

namespace ironboot::controller {

// Renders `status` as text: a header (served revision, publish time, a
// rejected revision with its error count, held-back machines, a failed
// fetch), the rollout line with the steps in flight, the bootstrap line, and
// an aligned machine table (NAME ROLE DESIRED OBSERVED PHASE READY LAST-BOOT,
// "-" for empty cells) followed by failed machines' reasons. Without a fleet
// section it says why there is none. Tolerates any missing or mistyped field
// (shown as "-"); never throws.
std::string FormatStatus(const nlohmann::json& status);

}  // namespace ironboot::controller
