#pragma once
// talos/: NodeClient, what the controller asks of a machine's Talos API
// (apid, gRPC with mutual TLS on port 50000; FACTS.md "Talos API"). The gRPC
// implementation is talos/api_client.h; tests use fakes of this interface.
//
// `node` is the machine's address: "10.0.4.101" (port 50000) or "host:port".
// Every call has a deadline. Errors name the node and the call
// ("Talos API 10.0.4.101:50000 Version: deadline exceeded after 5s") and
// carry kUnavailable when the node did not answer, kUnauthorized when TLS or
// the client certificate was refused, kInvalid when the node refused the
// request (e.g. Upgrade on a control plane when etcd would lose quorum).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace ironboot::talos {

inline constexpr int kTalosApiPort = 50000;

// VersionResponse.messages[0].version (+ platform).
struct NodeVersion {
  std::string tag;  // "v1.11.3"
  std::string sha;
  std::string arch;
  std::string platform;  // "metal"
};

// ServiceListResponse.messages[0].services[i].
struct ServiceStatus {
  std::string id;     // "apid", "etcd", "kubelet", ...
  std::string state;  // "Running", "Waiting", ...
  bool healthy = false;
  bool health_unknown = true;
  std::string last_message;
};

// EtcdMemberListResponse.messages[0].members[i].
struct EtcdMember {
  uint64_t id = 0;
  std::string hostname;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
};

// EtcdStatusResponse.messages[0].member_status.
struct EtcdMemberStatus {
  uint64_t member_id = 0;
  uint64_t leader = 0;  // member id of the leader; 0: none
  uint64_t raft_index = 0;
  uint64_t raft_term = 0;
  std::vector<std::string> errors;
  bool is_learner = false;
};

enum class RebootMode { kDefault = 0, kPowercycle = 1, kForce = 2 };

class NodeClient {
 public:
  virtual ~NodeClient() = default;
  virtual Result<NodeVersion> Version(const std::string& node) = 0;
  virtual Result<std::vector<ServiceStatus>> Services(const std::string& node) = 0;
  virtual Result<std::vector<EtcdMember>> EtcdMembers(const std::string& node) = 0;
  virtual Result<EtcdMemberStatus> EtcdStatus(const std::string& node) = 0;
  virtual Result<void> Reboot(const std::string& node, RebootMode mode) = 0;
  // UpgradeRequest{image, preserve}; the node installs `image` and reboots.
  virtual Result<void> Upgrade(const std::string& node, const std::string& image,
                               bool preserve) = 0;
  // Starts etcd on this control plane. Once per cluster, ever (FACTS.md).
  virtual Result<void> Bootstrap(const std::string& node) = 0;
  // The admin kubeconfig (the file inside the Kubeconfig stream's .tar.gz).
  virtual Result<std::string> Kubeconfig(const std::string& node) = 0;
};
using NodeClientPtr = std::shared_ptr<NodeClient>;

}  // namespace ironboot::talos
