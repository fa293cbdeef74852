#include "fleet/fleet.h"

#include "common/clock.h"
#include "common/duration.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>
#include <thread>

#include "common/json_text.h"
#include "common/log.h"
#include "fleet/boot_sequence.h"
#include "fleet/node_cert.h"
#include "fleet/sim_etcd.h"
#include "fleet/status_server.h"
#include "fleet/tar_gz.h"
#include "machine/machine.grpc.pb.h"

namespace ironboot::fleet {
namespace {

bool ValidMac(const std::string& mac) {
  if (mac.size() != 17) {
    return false;
  }
  for (size_t i = 0; i < mac.size(); ++i) {
    if (i % 3 == 2 ? mac[i] != ':' : !std::isxdigit(static_cast<unsigned char>(mac[i]))) {
      return false;
    }
  }
  return true;
}

// "5s", "200ms", "1m" (common/duration.h).
std::optional<std::chrono::milliseconds> ParseMillis(const std::string& text) {
  return ParseDuration(text);
}

}  // namespace

const char* NodeRoleName(NodeRole role) {
  return role == NodeRole::kControlPlane ? "controlplane" : "worker";
}

Result<NodeFaults> ParseFaults(const std::string& text) {
  NodeFaults f;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string word =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (word == "never-returns") {
      f.never_returns = true;
    } else if (word == "old-version") {
      f.old_version = true;
    } else if (word == "etcd-unhealthy") {
      f.etcd_unhealthy = true;
    } else if (word == "refuses-reboot") {
      f.refuses_reboot = true;
    } else if (word.rfind("slow-boot=", 0) == 0) {
      auto d = ParseMillis(word.substr(10));
      if (!d) {
        return Fail(ErrorCode::kInvalid,
                    "fault \"" + word + "\": want slow-boot=<duration> (e.g. 5s, 500ms)");
      }
      f.slow_boot = *d;
    } else if (word != "none") {
      return Fail(ErrorCode::kInvalid,
                  "unknown fault \"" + word +
                      "\" (want never-returns, old-version, etcd-unhealthy, slow-boot=<duration>, "
                      "refuses-reboot or none)");
    }
  }
  return f;
}

std::string FaultsText(const NodeFaults& f) {
  std::string out;
  auto add = [&](const std::string& w) { out += (out.empty() ? "" : ",") + w; };
  if (f.never_returns) {
    add("never-returns");
  }
  if (f.old_version) {
    add("old-version");
  }
  if (f.etcd_unhealthy) {
    add("etcd-unhealthy");
  }
  if (f.slow_boot.count() > 0) {
    add("slow-boot=" + std::to_string(f.slow_boot.count()) + "ms");
  }
  if (f.refuses_reboot) {
    add("refuses-reboot");
  }
  return out.empty() ? "none" : out;
}

Result<std::chrono::milliseconds> ParseFleetDuration(const std::string& text) {
  auto d = ParseMillis(text);
  if (!d) {
    return Fail(ErrorCode::kInvalid,
                "duration \"" + text + "\": want e.g. 500ms, 2s or 1m");
  }
  return *d;
}

Result<NodeSpec> ParseNodeSpec(const std::string& text) {
  NodeSpec spec;
  bool have_role = false;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    std::string kv =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() : comma + 1;
    auto eq = kv.find('=');
    std::string key = kv.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (eq == std::string::npos || value.empty()) {
      return Fail(ErrorCode::kInvalid, "node \"" + text + "\": \"" + kv + "\" is not key=value");
    }
    if (key == "name") {
      spec.name = value;
    } else if (key == "role") {
      if (value == "controlplane") {
        spec.role = NodeRole::kControlPlane;
      } else if (value == "worker") {
        spec.role = NodeRole::kWorker;
      } else {
        return Fail(ErrorCode::kInvalid,
                    "node \"" + text + "\": role \"" + value + "\" (want controlplane or worker)");
      }
      have_role = true;
    } else if (key == "mac") {
      std::string mac = value;
      for (char& c : mac) {
        c = c == '-' ? ':' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
      spec.mac = mac;
    } else if (key == "address") {
      spec.address = value;
    } else if (key == "uuid") {
      spec.uuid = value;
    } else {
      return Fail(ErrorCode::kInvalid, "node \"" + text + "\": unknown key \"" + key +
                                           "\" (want name, role, mac, address, uuid)");
    }
  }
  for (const auto& [key, value] : {std::pair<const char*, const std::string*>{"name", &spec.name},
                                   {"mac", &spec.mac},
                                   {"address", &spec.address}}) {
    if (value->empty()) {
      return Fail(ErrorCode::kInvalid, "node \"" + text + "\": missing " + key);
    }
  }
  if (!have_role) {
    return Fail(ErrorCode::kInvalid,
                "node \"" + text + "\": missing role (controlplane or worker)");
  }
  return spec;
}

const NodeRecord* FleetRecord::Node(const std::string& name) const {
  for (const auto& n : nodes) {
    if (n.spec.name == name) {
      return &n;
    }
  }
  return nullptr;
}

nlohmann::json ToJson(const FleetRecord& record) {
  using nlohmann::json;
  json nodes = json::array();
  for (const auto& n : record.nodes) {
    json downs = json::array();
    for (const auto& d : n.down_intervals) {
      downs.push_back({{"down_at", FormatRfc3339(d.down_at, true)},
                       {"up_at", d.up_at ? json(FormatRfc3339(*d.up_at, true)) : json(nullptr)},
                       {"reason", d.reason}});
    }
    nodes.push_back({
        {"name", n.spec.name},
        {"role", NodeRoleName(n.spec.role)},
        {"mac", n.spec.mac},
        {"address", n.spec.address},
        {"faults", FaultsText(n.faults)},
        {"state", n.state},
        {"version", n.version},
        {"installed_version", n.installed_version},
        {"boot_count", n.boot_count},
        {"boot_attempts", n.boot_attempts},
        {"first_up_at", n.first_up_at ? json(FormatRfc3339(*n.first_up_at, true)) : json(nullptr)},
        {"down_intervals", downs},
        {"reboot_calls", n.reboot_calls},
        {"upgrade_calls", n.upgrade_calls},
        {"upgrade_images", n.upgrade_images},
        {"bootstrap_calls", n.bootstrap_calls},
        {"kernel_url", n.kernel_url},
        {"config_url", n.config_url},
        {"last_error", n.last_error},
    });
  }
  json members = json::array();
  for (const auto& m : record.etcd_members) {
    members.push_back({{"id", std::to_string(m.id)}, {"name", m.name}, {"healthy", m.healthy}});
  }
  return json{{"nodes", nodes},
              {"etcd",
               {{"bootstrapped_by", record.bootstrapped_by},
                {"members", members},
                {"leader", std::to_string(record.etcd_leader)}}},
              {"split_brain", record.split_brain}};
}

// ---------------------------------------------------------------------------

namespace {

enum class Pending { kNone, kReboot, kUpgrade };

struct Node {
  NodeRecord rec;
  talos::CertAndKey cert;
  Pending pending = Pending::kNone;
  std::chrono::steady_clock::time_point up_since{};
  std::unique_ptr<grpc::Server> server;  // touched only by the node's thread
  std::unique_ptr<machine::MachineService::Service> api;
  std::thread thread;
};

}  // namespace

class Fleet::Impl {
 public:
  explicit Impl(FleetOptions options) : options_(std::move(options)) {
    if (!options_.clock) {
      options_.clock = std::make_shared<SystemClock>();
    }
  }

  Result<void> Init();
  void Run(Node* node);
  void EtcdLoop();
  FleetRecord Record() const;
  Result<void> SetFaults(const std::string& name, const NodeFaults& faults);
  void Stop();

  // Under mu_.
  bool Healthy(const std::string& name) const {
    for (const auto& n : nodes_) {
      if (n->rec.spec.name == name) {
        return n->rec.state == "up" && !n->rec.faults.etcd_unhealthy;
      }
    }
    return false;
  }
  void ElectLocked() {
    etcd_.Elect([this](const std::string& name) { return Healthy(name); });
  }
  // Waits until `pred` or stop, for at most `d`. Returns false on stop.
  bool WaitLocked(
      std::unique_lock<std::mutex>& lock, std::chrono::milliseconds d,
      const std::function<bool()>& pred = [] { return false; }) {
    cv_.wait_for(lock, d, [&] { return stopping_ || pred(); });
    return !stopping_;
  }
  Result<void> StartServer(Node* node);

  FleetOptions options_;
  std::shared_ptr<spdlog::logger> log_ = Logger("fleet");
  std::unique_ptr<StatusServer> status_;
  std::thread etcd_thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                  // guarded by mu_
  std::atomic<bool> cancel_boots_{false};  // set with stopping_; aborts boot HTTP requests
  std::vector<std::unique_ptr<Node>>
      nodes_;     // the vector is constant after Init; Node fields guarded by mu_
  SimEtcd etcd_;  // guarded by mu_
  std::chrono::steady_clock::time_point bootstrapped_at_{};
  std::vector<std::string> split_brain_;  // guarded by mu_
};

// The Talos API of one simulated node.
class NodeApi final : public machine::MachineService::Service {
 public:
  NodeApi(Fleet::Impl* fleet, Node* node) : fleet_(fleet), node_(node) {}

  // machine::MachineService
  grpc::Status Version(grpc::ServerContext*, const google::protobuf::Empty*,
                       machine::VersionResponse* reply) override {
    std::lock_guard lock(fleet_->mu_);
    auto* m = reply->add_messages();
    Meta(m->mutable_metadata());
    m->mutable_version()->set_tag(node_->rec.version);
    m->mutable_version()->set_sha("ironboot-sim");
    m->mutable_version()->set_os("Talos");
    m->mutable_version()->set_arch("amd64");
    m->mutable_platform()->set_name("metal");
    m->mutable_platform()->set_mode("metal");
    return grpc::Status::OK;
  }

  grpc::Status ServiceList(grpc::ServerContext*, const google::protobuf::Empty*,
                           machine::ServiceListResponse* reply) override {
    std::lock_guard lock(fleet_->mu_);
    auto* m = reply->add_messages();
    Meta(m->mutable_metadata());
    auto add = [&](const char* id, const char* state, bool healthy, bool unknown,
                   const std::string& msg) {
      auto* s = m->add_services();
      s->set_id(id);
      s->set_state(state);
      s->mutable_health()->set_healthy(healthy);
      s->mutable_health()->set_unknown(unknown);
      s->mutable_health()->set_last_message(msg);
    };
    add("apid", "Running", true, false, "");
    if (IsControlPlane()) {
      const std::string& name = node_->rec.spec.name;
      if (!fleet_->etcd_.IsMember(name)) {
        add("etcd", "Preparing", false, true,
            fleet_->etcd_.bootstrapped() ? "Joining etcd cluster" : "Waiting for etcd bootstrap");
      } else if (node_->rec.faults.etcd_unhealthy) {
        add("etcd", "Running", false, false,
            "Health check failed: etcd member unhealthy (simulated fault)");
      } else {
        add("etcd", "Running", true, false, "Health check successful");
      }
    }
    add("kubelet", "Running", true, false, "Health check successful");
    add("machined", "Running", true, false, "Health check successful");
    return grpc::Status::OK;
  }

  grpc::Status EtcdMemberList(grpc::ServerContext*, const machine::EtcdMemberListRequest*,
                              machine::EtcdMemberListResponse* reply) override {
    std::lock_guard lock(fleet_->mu_);
    if (auto st = EtcdRunning(); !st.ok()) {
      return st;
    }
    auto* m = reply->add_messages();
    Meta(m->mutable_metadata());
    for (const auto& member : fleet_->etcd_.members()) {
      auto* e = m->add_members();
      e->set_id(member.id);
      e->set_hostname(member.name);
      e->add_peer_urls("https://" + member.address + ":2380");
      e->add_client_urls("https://" + member.address + ":2379");
    }
    return grpc::Status::OK;
  }

  grpc::Status EtcdStatus(grpc::ServerContext*, const google::protobuf::Empty*,
                          machine::EtcdStatusResponse* reply) override {
    std::lock_guard lock(fleet_->mu_);
    if (auto st = EtcdRunning(); !st.ok()) {
      return st;
    }
    fleet_->ElectLocked();
    auto* m = reply->add_messages();
    Meta(m->mutable_metadata());
    auto* s = m->mutable_member_status();
    s->set_member_id(SimEtcd::MemberId(node_->rec.spec.name));
    s->set_leader(fleet_->etcd_.leader());
    s->set_raft_term(fleet_->etcd_.term());
    uint64_t index = fleet_->etcd_.NextIndex();
    s->set_raft_index(index);
    s->set_raft_applied_index(index);
    s->set_protocol_version("3.5.0");
    s->set_storage_version("3.5.0");
    s->set_db_size(1 << 20);
    s->set_db_size_in_use(1 << 19);
    if (node_->rec.faults.etcd_unhealthy) {
      s->add_errors("etcdserver: this member is unhealthy (simulated fault)");
    }
    for (const auto& member : fleet_->etcd_.members()) {
      if (member.name != node_->rec.spec.name && !fleet_->Healthy(member.name)) {
        char id[24];
        std::snprintf(id, sizeof(id), "%llx", static_cast<unsigned long long>(member.id));
        s->add_errors(std::string("etcdserver: member ") + id + " (" + member.name +
                      ") is unhealthy");
      }
    }
    if (fleet_->etcd_.leader() == 0) {
      s->add_errors("etcdserver: no leader");
    }
    return grpc::Status::OK;
  }

  grpc::Status Bootstrap(grpc::ServerContext*, const machine::BootstrapRequest*,
                         machine::BootstrapResponse* reply) override {
    std::lock_guard lock(fleet_->mu_);
    auto& rec = node_->rec;
    ++rec.bootstrap_calls;
    if (!IsControlPlane()) {
      rec.last_error = "Bootstrap refused: not a control plane";
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "bootstrap is not available on worker nodes");
    }
    if (fleet_->etcd_.bootstrapped()) {
      std::string line = FormatRfc3339(fleet_->options_.clock->Now(), true) + " " + rec.spec.name +
                         ": Bootstrap while etcd is already bootstrapped by " +
                         fleet_->etcd_.bootstrapped_by() + " (refused)";
      fleet_->split_brain_.push_back(line);
      rec.last_error = "Bootstrap refused: etcd already bootstrapped";
      fleet_->log_->error("split-brain attempt node={} bootstrapped_by={}", rec.spec.name,
                          fleet_->etcd_.bootstrapped_by());
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "etcd data directory is not empty: etcd is already bootstrapped (by " +
                              fleet_->etcd_.bootstrapped_by() + ")");
    }
    (void)fleet_->etcd_.Bootstrap(rec.spec.name, rec.spec.address);
    fleet_->bootstrapped_at_ = std::chrono::steady_clock::now();
    fleet_->log_->info("etcd bootstrapped node={}", rec.spec.name);
    Meta(reply->add_messages()->mutable_metadata());
    return grpc::Status::OK;
  }

  grpc::Status Reboot(grpc::ServerContext*, const machine::RebootRequest*,
                      machine::RebootResponse* reply) override {
    std::lock_guard lock(fleet_->mu_);
    auto& rec = node_->rec;
    ++rec.reboot_calls;
    if (rec.faults.refuses_reboot) {
      rec.last_error = "Reboot refused (simulated fault)";
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          "reboot failed: simulated fault refuses-reboot");
    }
    if (node_->pending == Pending::kNone) {
      node_->pending = Pending::kReboot;
    }
    fleet_->cv_.notify_all();
    fleet_->log_->info("reboot requested node={}", rec.spec.name);
    auto* m = reply->add_messages();
    Meta(m->mutable_metadata());
    m->set_actor_id("sim-reboot-" + std::to_string(rec.reboot_calls));
    return grpc::Status::OK;
  }

  grpc::Status Upgrade(grpc::ServerContext*, const machine::UpgradeRequest* req,
                       machine::UpgradeResponse* reply) override {
    std::lock_guard lock(fleet_->mu_);
    auto& rec = node_->rec;
    ++rec.upgrade_calls;
    const std::string& image = req->image();
    auto colon = image.rfind(':');
    auto slash = image.rfind('/');
    if (colon == std::string::npos || (slash != std::string::npos && colon < slash) ||
        colon + 1 == image.size()) {
      rec.last_error = "Upgrade refused: image without tag";
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "image \"" + image + "\" has no tag (want e.g. ghcr.io/siderolabs/installer:v1.12.0)");
    }
    std::string tag = image.substr(colon + 1);
    if (IsControlPlane() && !req->force()) {
      const auto& members = fleet_->etcd_.members();
      if (members.size() == 2) {
        rec.last_error = "Upgrade refused: etcd has 2 members";
        return grpc::Status(
            grpc::StatusCode::FAILED_PRECONDITION,
            "error validating etcd for upgrade: etcd member count(2) is insufficient "
            "to maintain quorum if upgrade commences");
      }
      for (const auto& m : members) {
        if (!fleet_->Healthy(m.name)) {
          rec.last_error = "Upgrade refused: etcd member " + m.name + " unhealthy";
          return grpc::Status(
              grpc::StatusCode::FAILED_PRECONDITION,
              "error validating etcd for upgrade: etcd member " + m.name +
                  " is not healthy; all members must be healthy to perform an upgrade");
        }
      }
    }
    rec.installed_version = tag;
    rec.upgrade_images.push_back(image);
    node_->pending = Pending::kUpgrade;
    fleet_->cv_.notify_all();
    fleet_->log_->info("upgrade requested node={} image={}", rec.spec.name, image);
    auto* m = reply->add_messages();
    Meta(m->mutable_metadata());
    m->set_ack("Upgrade request received");
    m->set_actor_id("sim-upgrade-" + std::to_string(rec.upgrade_calls));
    return grpc::Status::OK;
  }

  grpc::Status Kubeconfig(grpc::ServerContext*, const google::protobuf::Empty*,
                          grpc::ServerWriter<common::Data>* writer) override {
    std::string name;
    std::string address;
    {
      std::lock_guard lock(fleet_->mu_);
      if (!IsControlPlane()) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                            "kubeconfig is only available on control plane nodes");
      }
      name = node_->rec.spec.name;
      address = node_->rec.spec.address;
    }
    std::string kubeconfig =
        "apiVersion: v1\nkind: Config\nclusters:\n- name: ironboot-sim\n  cluster:\n"
        "    server: https://" +
        address +
        ":6443\ncontexts:\n- name: admin@ironboot-sim\n"
        "  context:\n    cluster: ironboot-sim\n    namespace: default\n    user: "
        "admin@ironboot-sim\n"
        "current-context: admin@ironboot-sim\nusers:\n- name: admin@ironboot-sim\n  user: {}\n";
    auto archive =
        SingleFileTarGz("kubeconfig", kubeconfig,
                        std::chrono::system_clock::to_time_t(fleet_->options_.clock->Now()));
    if (!archive) {
      return grpc::Status(grpc::StatusCode::INTERNAL, archive.error().message);
    }
    constexpr size_t kChunk = 256;  // several chunks, as a stream
    for (size_t off = 0; off < archive->size(); off += kChunk) {
      common::Data d;
      d.mutable_metadata()->set_hostname(name);
      d.set_bytes(archive->substr(off, kChunk));
      if (!writer->Write(d)) {
        break;
      }
    }
    return grpc::Status::OK;
  }

 private:
  void Meta(common::Metadata* m) { m->set_hostname(node_->rec.spec.name); }
  bool IsControlPlane() const { return node_->rec.spec.role == NodeRole::kControlPlane; }
  // Under mu_.
  grpc::Status EtcdRunning() {
    if (!IsControlPlane()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "etcd is not running on worker nodes");
    }
    if (!fleet_->etcd_.IsMember(node_->rec.spec.name)) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          fleet_->etcd_.bootstrapped()
                              ? "etcd is not running on this node yet (joining the cluster)"
                              : "etcd is not running: the cluster is not bootstrapped");
    }
    return grpc::Status::OK;
  }

  Fleet::Impl* fleet_;
  Node* node_;
};

Result<void> Fleet::Impl::Init() {
  if (options_.boot_server_url.rfind("http://", 0) != 0 &&
      options_.boot_server_url.rfind("https://", 0) != 0) {
    return Fail(ErrorCode::kInvalid, "fleet: boot server URL \"" + options_.boot_server_url +
                                         "\": want http://host:port");
  }
  while (!options_.boot_server_url.empty() && options_.boot_server_url.back() == '/') {
    options_.boot_server_url.pop_back();
  }
  if (options_.nodes.empty()) {
    return Fail(ErrorCode::kInvalid, "fleet: no nodes (want at least one)");
  }
  std::set<std::string> names, macs, addresses;
  for (const auto& spec : options_.nodes) {
    std::string where = "fleet: node \"" + spec.name + "\"";
    if (spec.name.empty()) {
      return Fail(ErrorCode::kInvalid, "fleet: a node without a name");
    }
    if (!ValidMac(spec.mac)) {
      return Fail(ErrorCode::kInvalid,
                  where + ": mac \"" + spec.mac +
                      "\" is not a MAC address (want 6 octets like 52:54:00:12:34:56)");
    }
    in_addr a{};
    if (inet_pton(AF_INET, spec.address.c_str(), &a) != 1) {
      return Fail(ErrorCode::kInvalid, where + ": address \"" + spec.address +
                                           "\" is not an IPv4 address (want e.g. 127.0.4.101)");
    }
    if (!names.insert(spec.name).second) {
      return Fail(ErrorCode::kInvalid, where + ": name used twice");
    }
    if (!macs.insert(spec.mac).second) {
      return Fail(ErrorCode::kInvalid, where + ": mac " + spec.mac + " used by another node");
    }
    if (!addresses.insert(spec.address).second) {
      return Fail(ErrorCode::kInvalid,
                  where + ": address " + spec.address + " used by another node");
    }
  }
  for (const auto& [name, faults] : options_.faults) {
    if (!names.contains(name)) {
      return Fail(ErrorCode::kInvalid, "fleet: fault for unknown node \"" + name + "\"");
    }
  }
  for (const auto& spec : options_.nodes) {
    auto node = std::make_unique<Node>();
    node->rec.spec = spec;
    node->rec.state = "booting";
    if (auto it = options_.faults.find(spec.name); it != options_.faults.end()) {
      node->rec.faults = it->second;
    }
    auto cert = IssueNodeCertificate(options_.os_ca, spec.address, spec.name, *options_.clock);
    if (!cert) {
      return std::unexpected(cert.error());
    }
    node->cert = *cert;
    node->api = std::make_unique<NodeApi>(this, node.get());
    nodes_.push_back(std::move(node));
  }
  if (!options_.status_address.empty()) {
    status_ = std::make_unique<StatusServer>(
        options_.status_address, [this](const std::string& method, const std::string& target) {
          StatusReply reply;
          std::string path = target.substr(0, target.find('?'));
          if (path == "/fleet" && (method == "GET" || method == "HEAD")) {
            reply.body = JsonText(ToJson(Record()), 2) + "\n";
            return reply;
          }
          if (path == "/fleet/faults" && method == "POST") {
            // ?node=<name>&faults=<list>
            std::map<std::string, std::string> q;
            std::string query =
                target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
            size_t s = 0;
            while (s < query.size()) {
              size_t amp = query.find('&', s);
              std::string kv =
                  query.substr(s, amp == std::string::npos ? std::string::npos : amp - s);
              auto eq = kv.find('=');
              q[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
              s = amp == std::string::npos ? query.size() : amp + 1;
            }
            auto faults = ParseFaults(q["faults"]);
            Result<void> set =
                faults ? SetFaults(q["node"], *faults) : std::unexpected(faults.error());
            if (!set) {
              reply.status = set.error().code == ErrorCode::kNotFound ? 404 : 400;
              reply.content_type = "text/plain";
              reply.body = set.error().message + "\n";
              return reply;
            }
            reply.body =
                "{\"node\":\"" + q["node"] + "\",\"faults\":\"" + FaultsText(*faults) + "\"}\n";
            return reply;
          }
          reply.status = 404;
          reply.content_type = "text/plain";
          reply.body =
              "404 not found (want GET /fleet or POST /fleet/faults?node=<name>&faults=<list>)\n";
          return reply;
        });
    if (auto r = status_->Start(); !r) {
      return std::unexpected(r.error().Wrap("fleet"));
    }
  }
  for (auto& node : nodes_) {
    Node* n = node.get();
    n->thread = std::thread([this, n] { Run(n); });
  }
  etcd_thread_ = std::thread([this] { EtcdLoop(); });
  return {};
}

namespace {

// Why a TCP listener on address:port cannot be had (gRPC says only that it
// failed): bind a socket there ourselves and report errno.
std::string WhyCannotListen(const std::string& address, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
    return "not an IPv4 address";
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return std::strerror(errno);
  }
  std::string why = "gRPC refused it";
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    why = std::strerror(errno);
    if (errno == EADDRINUSE) {
      why += " (another fleet, or a test, already serves this address)";
    }
  }
  close(fd);
  return why;
}

}  // namespace

Result<void> Fleet::Impl::StartServer(Node* node) {
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = options_.os_ca.crt;
  ssl.pem_key_cert_pairs.push_back({node->cert.key, node->cert.crt});
  grpc::ServerBuilder builder;
  std::string listen = node->rec.spec.address + ":" + std::to_string(options_.api_port);
  int bound = 0;
  builder.AddListeningPort(listen, grpc::SslServerCredentials(ssl), &bound);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT,
                             0);  // a second fleet on the same address must fail
  builder.RegisterService(node->api.get());
  node->server = builder.BuildAndStart();
  if (!node->server || bound == 0) {
    node->server.reset();
    return Fail(ErrorCode::kUnavailable,
                "Talos API: cannot listen on " + listen + ": " +
                    WhyCannotListen(node->rec.spec.address, options_.api_port));
  }
  return {};
}

void Fleet::Impl::Run(Node* node) {
  const NodeSpec spec = node->rec.spec;  // constant
  std::string previous_version;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    NodeRecord& rec = node->rec;
    if (rec.faults.never_returns && !rec.down_intervals.empty()) {
      if (rec.state != "gone") {
        log_->warn("node={} never returns (simulated fault)", spec.name);
      }
      rec.state = "gone";
      WaitLocked(lock, std::chrono::hours(24), [&] { return !node->rec.faults.never_returns; });
      continue;
    }
    rec.state = "booting";
    ++rec.boot_attempts;
    auto slow = rec.faults.slow_boot;
    if (slow.count() > 0 && !WaitLocked(lock, slow)) {
      break;
    }
    BootRequest req;
    req.boot_server_url = options_.boot_server_url;
    req.settings.mac = spec.mac;
    req.settings.uuid = spec.uuid;
    req.settings.ip = spec.address;
    req.source_ip = spec.address;
    req.timeout = options_.http_timeout;
    req.cancel = &cancel_boots_;
    lock.unlock();
    auto outcome = NetworkBoot(req);
    lock.lock();
    if (stopping_) {
      break;
    }
    std::string version;
    std::string error;
    if (!outcome) {
      error = outcome.error().message;
    } else if (outcome->exit_to_disk) {
      if (rec.installed_version.empty()) {
        error = "boot server said exit (boot from disk) but no Talos is installed on this node";
      } else {
        version = rec.installed_version;
      }
    } else {
      version = outcome->version;
      if (rec.installed_version.empty()) {
        rec.installed_version = version;  // the first boot installs Talos
      }
    }
    if (error.empty()) {
      if (rec.faults.old_version && !previous_version.empty()) {
        version = previous_version;
      }
      if (auto r = StartServer(node); !r) {
        error = r.error().message;
      }
    }
    if (!error.empty()) {
      rec.last_error = error;
      log_->warn("boot failed node={} address={} error=\"{}\"; retrying in {}ms", spec.name,
                 spec.address, error, options_.retry_interval.count());
      WaitLocked(lock, options_.retry_interval);
      continue;
    }
    TimePoint now = options_.clock->Now();
    rec.version = version;
    rec.kernel_url = outcome->exit_to_disk ? "" : outcome->kernel_url;
    rec.config_url = outcome->config_url;
    rec.state = "up";
    rec.last_error.clear();
    ++rec.boot_count;
    if (!rec.first_up_at) {
      rec.first_up_at = now;
    }
    if (!rec.down_intervals.empty() && !rec.down_intervals.back().up_at) {
      rec.down_intervals.back().up_at = now;
    }
    node->up_since = std::chrono::steady_clock::now();
    node->pending = Pending::kNone;
    log_->info("node up node={} address={} version={} boots={}", spec.name, spec.address, version,
               rec.boot_count);
    ElectLocked();

    cv_.wait(lock, [&] { return stopping_ || node->pending != Pending::kNone; });
    Pending why = node->pending;
    node->pending = Pending::kNone;
    std::unique_ptr<grpc::Server> server = std::move(node->server);
    lock.unlock();
    // Outside mu_: Shutdown waits for in-flight calls, which take mu_.
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server.reset();
    lock.lock();
    if (stopping_) {
      break;
    }
    previous_version = rec.version;
    rec.state = "down";
    rec.down_intervals.push_back(DownInterval{options_.clock->Now(), std::nullopt,
                                              why == Pending::kUpgrade ? "upgrade" : "reboot"});
    ElectLocked();
    log_->info("node down node={} reason={}", spec.name, rec.down_intervals.back().reason);
    if (!WaitLocked(lock, options_.reboot_delay)) {
      break;
    }
  }
  std::unique_ptr<grpc::Server> server = std::move(node->server);
  lock.unlock();
  if (server) {
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  }
}

void Fleet::Impl::EtcdLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (etcd_.bootstrapped()) {
      auto now = std::chrono::steady_clock::now();
      for (const auto& n : nodes_) {
        const auto& rec = n->rec;
        if (rec.spec.role == NodeRole::kControlPlane && rec.state == "up" &&
            !etcd_.IsMember(rec.spec.name) &&
            now - std::max(n->up_since, bootstrapped_at_) >= options_.etcd_join_delay) {
          etcd_.Join(rec.spec.name, rec.spec.address);
          log_->info("etcd member joined node={} members={}", rec.spec.name,
                     etcd_.members().size());
        }
      }
      ElectLocked();
    }
    WaitLocked(lock, std::chrono::milliseconds(50));
  }
}

FleetRecord Fleet::Impl::Record() const {
  std::lock_guard lock(mu_);
  FleetRecord r;
  for (const auto& n : nodes_) {
    r.nodes.push_back(n->rec);
  }
  r.bootstrapped_by = etcd_.bootstrapped_by();
  r.split_brain = split_brain_;
  for (const auto& m : etcd_.members()) {
    r.etcd_members.push_back(EtcdMemberRecord{m.id, m.name, Healthy(m.name)});
  }
  r.etcd_leader = etcd_.leader();
  return r;
}

Result<void> Fleet::Impl::SetFaults(const std::string& name, const NodeFaults& faults) {
  std::lock_guard lock(mu_);
  for (auto& n : nodes_) {
    if (n->rec.spec.name == name) {
      n->rec.faults = faults;
      log_->info("faults set node={} faults={}", name, FaultsText(faults));
      ElectLocked();
      cv_.notify_all();
      return {};
    }
  }
  return Fail(ErrorCode::kNotFound, "fleet: no node named \"" + name + "\"");
}

void Fleet::Impl::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return;
    }
    stopping_ = true;
    cancel_boots_ = true;
  }
  cv_.notify_all();
  for (auto& n : nodes_) {
    if (n->thread.joinable()) {
      n->thread.join();
    }
  }
  if (etcd_thread_.joinable()) {
    etcd_thread_.join();
  }
  if (status_) {
    status_->Stop();
  }
}

Fleet::Fleet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Fleet::~Fleet() {
  Stop();
}

Result<std::unique_ptr<Fleet>> Fleet::Start(FleetOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  if (auto r = impl->Init(); !r) {
    impl->Stop();
    return std::unexpected(r.error());
  }
  return std::unique_ptr<Fleet>(new Fleet(std::move(impl)));
}

void Fleet::Stop() {
  impl_->Stop();
}
FleetRecord Fleet::Record() const {
  return impl_->Record();
}
Result<void> Fleet::SetFaults(const std::string& node, const NodeFaults& faults) {
  return impl_->SetFaults(node, faults);
}
uint16_t Fleet::status_port() const {
  return impl_->status_ ? impl_->status_->port() : 0;
}

}  // namespace ironboot::fleet
