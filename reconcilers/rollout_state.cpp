#include "reconcilers/rollout_state.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/json_text.h"

namespace ironboot::reconcilers {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kFormat = 1;

json ToJson(const RolloutStep& s) {
  return {{"machine", s.machine},
          {"from", s.from_version},
          {"to", s.to_version},
          {"rollback", s.rollback},
          {"canary", s.canary},
          {"started_ms", s.started_ms},
          {"phase", s.phase},
          {"phase_since_ms", s.phase_since_ms},
          {"reboot_attempt_ms", s.reboot_attempt_ms},
          {"reboot_acked_ms", s.reboot_acked_ms},
          {"last_error", s.last_error},
          {"gate", s.gate},
          {"gate_since_ms", s.gate_since_ms},
          {"gates_passed", s.gates_passed}};
}

RolloutStep StepFromJson(const json& j) {
  RolloutStep s;
  s.machine = j.at("machine").get<std::string>();
  s.from_version = j.at("from").get<std::string>();
  s.to_version = j.at("to").get<std::string>();
  s.rollback = j.value("rollback", false);
  s.canary = j.value("canary", false);
  s.started_ms = j.value("started_ms", int64_t{0});
  s.phase = j.value("phase", std::string("pin"));
  s.phase_since_ms = j.value("phase_since_ms", int64_t{0});
  s.reboot_attempt_ms = j.value("reboot_attempt_ms", int64_t{0});
  s.reboot_acked_ms = j.value("reboot_acked_ms", int64_t{0});
  s.last_error = j.value("last_error", std::string());
  s.gate = j.value("gate", std::string());
  s.gate_since_ms = j.value("gate_since_ms", int64_t{0});
  s.gates_passed = j.value("gates_passed", std::vector<std::string>{});
  return s;
}

}  // namespace

Result<RolloutState> LoadRolloutState(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return RolloutState{};
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    json j = json::parse(text.str());
    if (j.value("format", 0) != kFormat) {
      return Fail(ErrorCode::kInvalid, path.string() + ": unknown rollout state format " +
                                           JsonText(j.value("format", json())) + " (want " +
                                           std::to_string(kFormat) + ")");
    }
    RolloutState s;
    s.pins = j.value("pins", std::map<std::string, std::string>{});
    s.previous = j.value("previous", std::map<std::string, std::string>{});
    for (const auto& step : j.value("steps", json::array())) {
      s.steps.push_back(StepFromJson(step));
    }
    s.failed = j.value("failed", std::map<std::string, std::string>{});
    s.halted_reason = j.value("halted_reason", std::string());
    s.target = j.value("target", std::string());
    s.canary_done = j.value("canary_done", false);
    s.soak_until_ms = j.value("soak_until_ms", int64_t{0});
    s.soak_machine = j.value("soak_machine", std::string());
    s.completed_steps = j.value("completed_steps", int64_t{0});
    if (j.contains("bootstrap")) {
      const auto& b = j["bootstrap"];
      s.bootstrap.node = b.value("node", std::string());
      s.bootstrap.decided_ms = b.value("decided_ms", int64_t{0});
      s.bootstrap.done_ms = b.value("done_ms", int64_t{0});
      s.bootstrap.found_running = b.value("found_running", false);
    }
    return s;
  } catch (const json::exception& e) {
    return Fail(ErrorCode::kInvalid,
                path.string() + ": not a rollout state file (" + std::string(e.what()) +
                    "); move it aside to start over, knowing that the rollout's progress and "
                    "the bootstrap decision are in it");
  }
}

Result<void> SaveRolloutState(const RolloutState& s, const fs::path& path) {
  json steps = json::array();
  for (const auto& step : s.steps) {
    steps.push_back(ToJson(step));
  }
  json j = {{"format", kFormat},
            {"pins", s.pins},
            {"previous", s.previous},
            {"steps", steps},
            {"failed", s.failed},
            {"halted_reason", s.halted_reason},
            {"target", s.target},
            {"canary_done", s.canary_done},
            {"soak_until_ms", s.soak_until_ms},
            {"soak_machine", s.soak_machine},
            {"completed_steps", s.completed_steps},
            {"bootstrap",
             {{"node", s.bootstrap.node},
              {"decided_ms", s.bootstrap.decided_ms},
              {"done_ms", s.bootstrap.done_ms},
              {"found_running", s.bootstrap.found_running}}}};
  return WriteFileAtomically(path, JsonText(j, 2) + "\n");
}

}  // namespace ironboot::reconcilers
