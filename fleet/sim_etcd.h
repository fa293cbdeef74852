#pragma once
// fleet/: the etcd cluster shared by a simulated fleet's control planes.
// Not thread-safe: the fleet calls it under its own mutex.
//
// Rules (as etcd on Talos behaves for what the controller observes):
// Bootstrap makes the calling control plane the first member and leader; a
// second Bootstrap is refused (and counted as a split-brain attempt by the
// caller). Other control planes join as members by themselves. Members stay
// listed across reboots. A member is healthy when the caller says so (node up,
// no injected fault); the leader moves to a healthy member when it is not
// healthy, and there is no leader without quorum (a majority healthy).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"

namespace ironboot::fleet {

class SimEtcd {
 public:
  struct Member {
    uint64_t id = 0;
    std::string name;     // the node's hostname
    std::string address;  // the node's IP
  };

  // The member id a node gets (stable: derived from its name, never 0).
  static uint64_t MemberId(const std::string& name);

  bool bootstrapped() const { return !members_.empty(); }
  const std::string& bootstrapped_by() const { return bootstrapped_by_; }
  // kInvalid when etcd is already bootstrapped (anywhere in the fleet).
  Result<void> Bootstrap(const std::string& name, const std::string& address);
  // Adds a member (no-op if already one). Only after Bootstrap.
  void Join(const std::string& name, const std::string& address);
  bool IsMember(const std::string& name) const;
  const std::vector<Member>& members() const { return members_; }

  // Re-elects with `healthy(name)`: keeps a healthy leader, else picks the
  // first healthy member; none without quorum. Bumps the term on a change.
  void Elect(const std::function<bool(const std::string&)>& healthy);
  uint64_t leader() const { return leader_; }
  uint64_t term() const { return term_; }
  // Advances and returns the raft index (each status read moves it on).
  uint64_t NextIndex() { return ++index_; }

 private:
  std::vector<Member> members_;  // join order
  std::string bootstrapped_by_;
  uint64_t leader_ = 0;
  uint64_t term_ = 0;
  uint64_t index_ = 0;
};

}  // namespace ironboot::fleet
