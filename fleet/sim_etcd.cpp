#include "fleet/sim_etcd.h"

namespace ironboot::fleet {

uint64_t SimEtcd::MemberId(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

Result<void> SimEtcd::Bootstrap(const std::string& name, const std::string& address) {
  if (bootstrapped()) {
    return Fail(ErrorCode::kInvalid, "etcd is already bootstrapped (by " + bootstrapped_by_ + ")");
  }
  bootstrapped_by_ = name;
  members_.push_back(Member{MemberId(name), name, address});
  leader_ = members_.front().id;
  term_ = 1;
  return {};
}

void SimEtcd::Join(const std::string& name, const std::string& address) {
  if (!bootstrapped() || IsMember(name)) {
    return;
  }
  members_.push_back(Member{MemberId(name), name, address});
}

bool SimEtcd::IsMember(const std::string& name) const {
  for (const auto& m : members_) {
    if (m.name == name) {
      return true;
    }
  }
  return false;
}

void SimEtcd::Elect(const std::function<bool(const std::string&)>& healthy) {
  if (members_.empty()) {
    return;
  }
  size_t healthy_count = 0;
  bool leader_healthy = false;
  uint64_t first_healthy = 0;
  for (const auto& m : members_) {
    if (healthy(m.name)) {
      ++healthy_count;
      if (first_healthy == 0) {
        first_healthy = m.id;
      }
      if (m.id == leader_) {
        leader_healthy = true;
      }
    }
  }
  uint64_t next = 0;
  if (healthy_count * 2 > members_.size()) {
    next = leader_healthy ? leader_ : first_healthy;
  }
  if (next != leader_) {
    leader_ = next;
    if (next != 0) {
      ++term_;
    }
  }
}

}  // namespace ironboot::fleet
