#pragma once
// fleet/: a simulated fleet of Talos nodes in one process, for tests and
// `ironboot demo`. Each node has its own loopback address (127.0.4.101, ...),
// network-boots by real HTTP through the boot server (fleet/boot_sequence.h),
// runs the version named by the stand-in kernel it was served, and then
// serves the Talos API (gRPC, mutual TLS against the os CA) on
// <address>:50000: Version, ServiceList, EtcdMemberList, EtcdStatus,
// Bootstrap, Reboot, Upgrade, Kubeconfig. Control planes share one simulated
// etcd (fleet/sim_etcd.h). Faults are injected per node. Everything that
// happens is kept in a record (Record(), and GET /fleet as JSON on the
// optional status address) for tests to assert on.
//
// Thread-safety: every public method may be called from any thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/error.h"
#include "talos/pki.h"

namespace ironboot::fleet {

enum class NodeRole { kControlPlane, kWorker };
const char* NodeRoleName(NodeRole role);  // "controlplane" / "worker"

struct NodeSpec {
  std::string name;  // hostname, also the etcd member name
  NodeRole role = NodeRole::kWorker;
  std::string mac;      // "52:54:00:12:34:56"
  std::string address;  // "127.0.4.101"
  std::string uuid;     // optional, for ${uuid}
};

// Injected misbehaviour of one node; settable at start and at runtime.
struct NodeFaults {
  bool never_returns = false;   // after going down (reboot/upgrade) it never boots again
  bool old_version = false;     // comes back running the version it ran before going down
  bool etcd_unhealthy = false;  // its etcd member reports unhealthy while it is up
  std::chrono::milliseconds slow_boot{0};  // extra time each boot takes
  bool refuses_reboot = false;             // Reboot answers an error, the node stays up

  bool operator==(const NodeFaults&) const = default;
};
// Parses a comma-separated list: never-returns, old-version, etcd-unhealthy,
// slow-boot=5s, refuses-reboot, none. kInvalid naming the bad word and the
// accepted ones.
Result<NodeFaults> ParseFaults(const std::string& text);
std::string FaultsText(const NodeFaults& faults);
// "2s", "500ms", "1m" (whole numbers). kInvalid quoting the text.
Result<std::chrono::milliseconds> ParseFleetDuration(const std::string& text);
// "name=cp1,role=controlplane,mac=52:54:00:00:00:01,address=127.0.4.101[,uuid=...]"
// (`ironboot fleet --node`). kInvalid naming the bad key or value.
Result<NodeSpec> ParseNodeSpec(const std::string& text);

struct FleetOptions {
  std::string boot_server_url;  // "http://127.0.0.1:8080"
  talos::CertAndKey os_ca;      // the secrets bundle's certs.os
  std::vector<NodeSpec> nodes;
  std::map<std::string, NodeFaults> faults;  // node name -> faults at start
  int api_port = 50000;
  std::chrono::milliseconds reboot_delay{2000};    // down time of a reboot
  std::chrono::milliseconds retry_interval{1000};  // between failed boot attempts
  std::chrono::milliseconds etcd_join_delay{500};  // control plane up -> etcd member
  std::chrono::milliseconds http_timeout{5000};    // per boot HTTP request
  std::string status_address;                      // "127.0.0.1:0"; "" = none
  ClockPtr clock;                                  // null: SystemClock
};

using TimePoint = std::chrono::system_clock::time_point;

struct DownInterval {
  TimePoint down_at;
  std::optional<TimePoint> up_at;  // empty while still down
  std::string reason;              // "reboot", "upgrade"
};

// What happened to one node so far.
struct NodeRecord {
  NodeSpec spec;
  NodeFaults faults;
  std::string state;              // "booting", "up", "down" (rebooting), "gone" (never returns)
  std::string version;            // running now (last booted); "" before the first boot
  std::string installed_version;  // on disk (first PXE boot or Upgrade)
  int boot_count = 0;             // completed boots (API came up)
  int boot_attempts = 0;
  std::optional<TimePoint> first_up_at;
  std::vector<DownInterval> down_intervals;
  int reboot_calls = 0;  // Reboot RPCs received (accepted or not)
  int upgrade_calls = 0;
  std::vector<std::string> upgrade_images;  // accepted Upgrade images, in order
  int bootstrap_calls = 0;
  std::string kernel_url;  // of the last boot
  std::string config_url;
  std::string last_error;  // of the last failed boot attempt or refused call
};

struct EtcdMemberRecord {
  uint64_t id = 0;
  std::string name;
  bool healthy = false;
};

struct FleetRecord {
  std::vector<NodeRecord> nodes;
  std::string bootstrapped_by;           // "" before Bootstrap
  std::vector<std::string> split_brain;  // a line per refused second Bootstrap
  std::vector<EtcdMemberRecord> etcd_members;
  uint64_t etcd_leader = 0;

  const NodeRecord* Node(const std::string& name) const;
};
nlohmann::json ToJson(const FleetRecord& record);

class Fleet {
 public:
  // Checks the options (names, MACs, addresses unique and well-formed; faults
  // for known nodes), issues each node's certificate and starts every node
  // booting. kInvalid naming the node and field.
  static Result<std::unique_ptr<Fleet>> Start(FleetOptions options);
  ~Fleet();  // Stop()
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Stops every node (servers shut down, threads joined). Idempotent.
  void Stop();

  FleetRecord Record() const;
  // kNotFound for an unknown node.
  Result<void> SetFaults(const std::string& node, const NodeFaults& faults);
  // The bound status port (0 when there is no status address).
  uint16_t status_port() const;

  class Impl;

 private:
  explicit Fleet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ironboot::fleet
