#include "controller/status_format.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace ironboot::controller {

namespace {

using nlohmann::json;

// The member `key` of `j` when `j` is an object that has it; else null.
const json& Field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) {
    return kNull;
  }
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

// A string field, or "" when missing or not a string.
std::string Str(const json& j, const char* key) {
  const json& v = Field(j, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// A non-negative integer field, or -1 when missing or not a number.
int64_t Num(const json& j, const char* key) {
  const json& v = Field(j, key);
  if (v.is_number_unsigned()) {
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) {
    return v.get<int64_t>();
  }
  if (v.is_number_float()) {
    return static_cast<int64_t>(v.get<double>());
  }
  return -1;
}

bool Bool(const json& j, const char* key) {
  const json& v = Field(j, key);
  return v.is_boolean() && v.get<bool>();
}

std::string OrDash(const std::string& s) {
  return s.empty() ? "-" : s;
}

std::string Plural(int64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

void Header(const json& status, std::string& out) {
  const json& served = Field(status, "served");
  std::string revision = Str(served, "revision");
  if (revision.empty()) {
    out += "served: nothing yet";
  } else {
    out += "served: " + revision;
    if (auto at = Str(served, "published_at"); !at.empty()) {
      out += " (published " + at + ")";
    }
    const json& machines = Field(served, "machines");
    if (machines.is_array()) {
      out += ", " + Plural(static_cast<int64_t>(machines.size()), "machine");
    }
  }
  const json& rejected = Field(status, "rejected");
  if (rejected.is_object()) {
    out += "; rejected: " + OrDash(Str(rejected, "revision"));
    const json& errors = Field(rejected, "errors");
    if (errors.is_array()) {
      out += " (" + Plural(static_cast<int64_t>(errors.size()), "error") + ")";
    }
  }
  out += "\n";
  if (rejected.is_object()) {
    const json& errors = Field(rejected, "errors");
    if (errors.is_array()) {
      for (const auto& e : errors) {
        if (e.is_string()) {
          out += "  error: " + e.get<std::string>() + "\n";
        }
      }
    }
  }
  const json& held = Field(status, "held_back");
  if (held.is_array()) {
    for (const auto& h : held) {
      out += "held back: " + OrDash(Str(h, "machine")) + " release " + OrDash(Str(h, "release"));
      if (auto reason = Str(h, "reason"); !reason.empty()) {
        out += ": " + reason;
      }
      if (auto serving = Str(h, "serving"); !serving.empty()) {
        out += " (serving " + serving + ")";
      }
      out += "\n";
    }
  }
  const json& fetch = Field(Field(status, "source"), "last_fetch");
  if (Str(fetch, "result") == "error") {
    out += "source: last fetch failed";
    if (auto at = Str(fetch, "time"); !at.empty()) {
      out += " at " + at;
    }
    out += ": " + OrDash(Str(fetch, "error")) + "\n";
  }
}

void Rollout(const json& rollout, std::string& out) {
  out += "rollout: " + OrDash(Str(rollout, "state"));
  if (auto strategy = Str(rollout, "strategy"); !strategy.empty()) {
    out += " (" + strategy + ")";
  }
  const json& progress = Field(rollout, "progress");
  int64_t done = Num(progress, "done");
  int64_t total = Num(progress, "total");
  if (done >= 0 && total >= 0) {
    out += ", " + std::to_string(done) + "/" + std::to_string(total) + " done";
  }
  if (int64_t n = Num(progress, "in_progress"); n > 0) {
    out += ", " + std::to_string(n) + " in progress";
  }
  if (int64_t n = Num(progress, "pending"); n > 0) {
    out += ", " + std::to_string(n) + " pending";
  }
  if (int64_t n = Num(progress, "failed"); n > 0) {
    out += ", " + std::to_string(n) + " failed";
  }
  out += "\n";
  if (auto reason = Str(rollout, "halted_reason"); !reason.empty()) {
    out += "  halted: " + reason + "\n";
  }
  if (auto reason = Str(rollout, "blocked_reason"); !reason.empty()) {
    out += "  blocked: " + reason + "\n";
  }
  const json& steps = Field(rollout, "steps");
  if (!steps.is_array()) {
    return;
  }
  for (const auto& s : steps) {
    out += "  step: " + OrDash(Str(s, "machine")) + " " + OrDash(Str(s, "from")) + " -> " +
           OrDash(Str(s, "to"));
    std::vector<std::string> tags;
    if (Bool(s, "rollback")) {
      tags.push_back("rollback");
    }
    if (Bool(s, "canary")) {
      tags.push_back("canary");
    }
    if (!tags.empty()) {
      out += " (";
      for (size_t i = 0; i < tags.size(); ++i) {
        out += (i ? ", " : "") + tags[i];
      }
      out += ")";
    }
    if (auto phase = Str(s, "phase"); !phase.empty()) {
      out += ", " + phase;
    }
    if (auto gate = Str(s, "gate"); !gate.empty()) {
      out += ", gate " + gate;
    }
    if (auto started = Str(s, "started"); !started.empty()) {
      out += ", started " + started;
    }
    out += "\n";
    if (auto waiting = Str(s, "waiting_on"); !waiting.empty()) {
      out += "    waiting on: " + waiting + "\n";
    }
  }
}

// "done on cp-1 at T", else the sequencer's own sentence (which names the
// node), else the decision, else "-".
void Bootstrap(const json& b, std::string& out) {
  std::string node = Str(b, "node");
  std::string status = Str(b, "status");
  std::string done = Str(b, "done");
  std::string decided = Str(b, "decided");
  out += "bootstrap: ";
  if (!done.empty()) {
    out += "done on " + OrDash(node) + " at " + done;
    if (Bool(b, "found_running")) {
      out += " (found already running)";
    }
  } else if (!status.empty()) {
    out += status;
    if (!decided.empty()) {
      out += " (decided on " + OrDash(node) + " at " + decided + ")";
    }
  } else if (!decided.empty() || !node.empty()) {
    out += "decided on " + OrDash(node) + (decided.empty() ? "" : " at " + decided);
  } else {
    out += "-";
  }
  out += "\n";
}

void MachineTable(const json& machines, std::string& out) {
  constexpr size_t kColumns = 7;
  std::vector<std::array<std::string, kColumns>> rows;
  rows.push_back({"NAME", "ROLE", "DESIRED", "OBSERVED", "PHASE", "READY", "LAST-BOOT"});
  std::vector<std::pair<std::string, std::string>> failed;
  for (const auto& m : machines) {
    const json& ready = Field(m, "ready");
    rows.push_back({OrDash(Str(m, "name")), OrDash(Str(m, "role")), OrDash(Str(m, "desired")),
                    OrDash(Str(m, "observed")), OrDash(Str(m, "phase")),
                    ready.is_boolean() ? (ready.get<bool>() ? "yes" : "no") : "-",
                    OrDash(Str(m, "last_boot"))});
    if (auto reason = Str(m, "failed_reason"); !reason.empty()) {
      failed.emplace_back(OrDash(Str(m, "name")), reason);
    }
  }
  std::array<size_t, kColumns> width{};
  for (const auto& row : rows) {
    for (size_t c = 0; c < kColumns; ++c) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < kColumns; ++c) {
      line += row[c];
      if (c + 1 < kColumns) {
        line.append(width[c] - row[c].size() + 2, ' ');
      }
    }
    out += line + "\n";
  }
  for (const auto& [name, reason] : failed) {
    out += name + " failed: " + reason + "\n";
  }
}

}  // namespace

std::string FormatStatus(const nlohmann::json& status) {
  std::string out;
  Header(status, out);
  if (!status.is_object() || !status.contains("fleet")) {
    out +=
        "fleet: not managed: this server has no Talos API credentials (start `ironboot serve` "
        "with -talosconfig or -secrets-file to run upgrades)\n";
    return out;
  }
  const json& fleet = status["fleet"];
  if (!fleet.is_object()) {
    out += "fleet: no report yet: the upgrade reconciler has not finished its first pass\n";
    return out;
  }
  if (const json& off = Field(fleet, "disabled"); off.is_string()) {
    out += "fleet: " + off.get<std::string>() + "\n";
    return out;
  }
  Rollout(Field(fleet, "rollout"), out);
  Bootstrap(Field(fleet, "bootstrap"), out);
  const json& machines = Field(fleet, "machines");
  if (!machines.is_array() || machines.empty()) {
    out += "machines: none\n";
    return out;
  }
  MachineTable(machines, out);
  return out;
}

}  // namespace ironboot::controller
