#include "controller/plan_diff.h"

#include <algorithm>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

namespace ironboot::controller {
using manifests::BootPlan;
using manifests::MachineSummary;

namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    out.push_back(line);
  }
  return out;
}

const bootserver::Profile* FindProfile(const BootPlan& plan, const std::string& id) {
  for (const auto& p : plan.profiles) {
    if (p.id == id) {
      return &p;
    }
  }
  return nullptr;
}

std::string Config(const BootPlan& plan, const MachineSummary& m) {
  for (const auto& mac : m.macs) {
    if (auto it = plan.machine_configs.find(mac); it != plan.machine_configs.end()) {
      return it->second;
    }
  }
  return {};
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    out += (out.empty() ? "" : " ") + s;
  }
  return out;
}

}  // namespace

std::string MaskSecrets(const std::string& config) {
  static const std::regex kSecretKey(
      R"(^(\s*-?\s*[A-Za-z0-9_]*(key|Key|token|Token|secret|Secret)\s*:\s*)(\S.*)$)");
  std::string out;
  bool in_private_block = false;
  for (const auto& line : Lines(config)) {
    std::string masked = line;
    if (line.find("PRIVATE KEY-----") != std::string::npos) {
      in_private_block = line.find("BEGIN") != std::string::npos;
      masked = line.substr(0, line.find_first_not_of(' ')) + "***";
    } else if (in_private_block) {
      masked = line.substr(0, line.find_first_not_of(' ')) + "***";
    } else {
      std::smatch m;
      if (std::regex_match(line, m, kSecretKey) && m[3].str() != "|" && m[3].str() != ">") {
        masked = m[1].str() + "***";
      }
    }
    out += masked + "\n";
  }
  return out;
}

std::string LineDiff(const std::string& from, const std::string& to) {
  auto a = Lines(from);
  auto b = Lines(to);
  size_t n = a.size();
  size_t m = b.size();
  // LCS table; configs are a few hundred lines.
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  struct Op {
    char kind;  // ' ', '-', '+'
    std::string line;
  };
  std::vector<Op> ops;
  size_t i = 0;
  size_t j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.push_back({' ', a[i++]});
      ++j;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push_back({'-', a[i++]});
    } else {
      ops.push_back({'+', b[j++]});
    }
  }
  constexpr size_t kContext = 2;
  std::vector<bool> show(ops.size(), false);
  for (size_t k = 0; k < ops.size(); ++k) {
    if (ops[k].kind != ' ') {
      for (size_t c = (k >= kContext ? k - kContext : 0); c <= std::min(ops.size() - 1, k + kContext);
           ++c) {
        show[c] = true;
      }
    }
  }
  std::string out;
  bool gap = false;
  for (size_t k = 0; k < ops.size(); ++k) {
    if (!show[k]) {
      gap = true;
      continue;
    }
    if (gap && !out.empty()) {
      out += "  @@\n";
    }
    gap = false;
    out += std::string("  ") + ops[k].kind + " " + ops[k].line + "\n";
  }
  return out;
}

PlanSummary DiffPlans(const BootPlan& from, const BootPlan& to) {
  PlanSummary s;
  std::map<std::string, const MachineSummary*> old_machines;
  std::map<std::string, const MachineSummary*> new_machines;
  for (const auto& m : from.machines) {
    old_machines[m.name] = &m;
  }
  for (const auto& m : to.machines) {
    new_machines[m.name] = &m;
  }
  std::ostringstream out;
  for (const auto& [name, m] : new_machines) {
    auto old = old_machines.find(name);
    const auto* profile = FindProfile(to, m->profile);
    if (old == old_machines.end()) {
      ++s.added;
      out << "+ machine " << name << " (" << m->role << ", " << Join(m->macs) << "): boots "
          << m->talos_version << "/" << m->arch << "\n";
      continue;
    }
    const MachineSummary* o = old->second;
    const auto* old_profile = FindProfile(from, o->profile);
    std::ostringstream section;
    if (o->talos_version != m->talos_version || o->arch != m->arch) {
      section << "    release: " << o->talos_version << "/" << o->arch << " -> " << m->talos_version
              << "/" << m->arch << "\n";
    }
    if (o->role != m->role) {
      section << "    role: " << o->role << " -> " << m->role << "\n";
    }
    if (o->macs != m->macs) {
      section << "    macs: " << Join(o->macs) << " -> " << Join(m->macs) << "\n";
    }
    if (o->address != m->address) {
      section << "    address: " << (o->address.empty() ? "(none)" : o->address) << " -> "
              << (m->address.empty() ? "(none)" : m->address) << "\n";
    }
    std::vector<std::string> old_args = old_profile ? old_profile->args : std::vector<std::string>{};
    std::vector<std::string> new_args = profile ? profile->args : std::vector<std::string>{};
    for (const auto& arg : old_args) {
      if (std::find(new_args.begin(), new_args.end(), arg) == new_args.end()) {
        section << "    kernel arg - " << arg << "\n";
      }
    }
    for (const auto& arg : new_args) {
      if (std::find(old_args.begin(), old_args.end(), arg) == old_args.end()) {
        section << "    kernel arg + " << arg << "\n";
      }
    }
    std::string old_config = MaskSecrets(Config(from, *o));
    std::string new_config = MaskSecrets(Config(to, *m));
    if (old_config != new_config) {
      section << "    machine config (secrets masked):\n" << LineDiff(old_config, new_config);
    }
    if (section.str().empty()) {
      ++s.unchanged;
    } else {
      ++s.changed;
      out << "~ machine " << name << "\n" << section.str();
    }
  }
  for (const auto& [name, m] : old_machines) {
    if (new_machines.count(name) == 0) {
      ++s.removed;
      out << "- machine " << name << " (" << m->role << ", " << Join(m->macs) << ")\n";
    }
  }
  out << "Plan: " << s.added << " to add, " << s.changed << " to change, " << s.removed
      << " to remove, " << s.unchanged << " unchanged.\n";
  s.text = out.str();
  return s;
}

}  // namespace ironboot::controller
