#pragma once
// reconcilers/: ObservedState, what machines really booted and run, per
// machine and with timestamps. Two feeds: the boot server (every answered
// request, through BootHandler::Options::observer) and the Talos API poller
// (controller/upgrade_loop). The sequencer decides from a Snapshot().
//
// Boot events are kept in memory: after a restart they start empty (the
// sequencer knows when the process started and does not wait for events
// that happened before it).

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bootserver/handler.h"
#include "manifests/boot_plan.h"
#include "talos/node_client.h"

namespace ironboot::reconcilers {

using TimePoint = std::chrono::system_clock::time_point;

// One answered boot request of a machine.
struct BootFetch {
  TimePoint at{};
  std::string address;  // the client's IP
  std::string version;  // the Talos release it was given ("v1.12.0"; "" if unknown)
};

// What the Talos API said at one poll.
struct ApiObservation {
  TimePoint at{};
  bool up = false;     // Version answered
  std::string error;   // why not (names the node and call), "" when up
  std::string version;  // "v1.11.3"
  std::vector<talos::ServiceStatus> services;
  // Control planes only; `etcd_error` set when the etcd calls failed (e.g.
  // etcd not started yet: before Bootstrap).
  bool etcd_queried = false;
  std::vector<talos::EtcdMember> etcd_members;
  std::optional<talos::EtcdMemberStatus> etcd_status;
  std::string etcd_error;
};

struct ObservedMachine {
  // Boot server.
  std::optional<BootFetch> ipxe;  // its iPXE script (/ipxe?mac=...)
  std::string ipxe_group;
  std::optional<BootFetch> kernel;
  std::optional<BootFetch> initramfs;
  std::optional<BootFetch> config;
  // Talos API: the newest poll, and since when the API has been up/down.
  std::optional<ApiObservation> api;
  std::optional<TimePoint> up_since;
  std::optional<TimePoint> down_since;
  std::optional<TimePoint> last_down;  // the last poll it did not answer (kept once it is back)

  bool ApiUp() const { return api && api->up; }
  // apid and kubelet (and etcd on a control plane) report healthy.
  bool ServicesHealthy(bool control_plane, std::string* why = nullptr) const;
  // Answering, and its services are healthy.
  bool Ready(bool control_plane) const { return ApiUp() && ServicesHealthy(control_plane); }
};

using ObservedMachines = std::map<std::string, ObservedMachine>;  // by machine name

// Thread-safe.
class ObservedState {
 public:
  // The plan served now: maps MACs and static addresses to machines, and
  // machines to the release their script boots.
  void SetPlan(std::shared_ptr<const manifests::BootPlan> plan);

  // BootHandler::Options::observer.
  void OnRequest(const bootserver::HttpRequest& req, const bootserver::Reply& reply, TimePoint now);

  void RecordApi(const std::string& machine, ApiObservation observation);

  ObservedMachines Snapshot() const;

 private:
  std::string MachineOfAddressLocked(const std::string& address) const;

  mutable std::mutex mu_;
  std::shared_ptr<const manifests::BootPlan> plan_;       // guarded by mu_
  std::map<std::string, std::string> machine_of_mac_;      // guarded by mu_
  std::map<std::string, std::string> machine_of_address_;  // static addresses; guarded by mu_
  std::map<std::string, std::string> version_of_machine_;  // guarded by mu_
  std::map<std::string, std::string> last_ipxe_address_;   // address -> machine; guarded by mu_
  ObservedMachines machines_;                              // guarded by mu_
};

// "/assets/talos/1.12.0/amd64/vmlinuz" -> {"v1.12.0", "kernel"}; other paths -> nullopt.
struct AssetKind {
  std::string version;
  std::string kind;  // "kernel" or "initramfs"
};
std::optional<AssetKind> ClassifyAssetPath(std::string_view path);

}  // namespace ironboot::reconcilers
