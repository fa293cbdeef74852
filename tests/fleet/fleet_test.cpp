#include "fleet/fleet.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fleet/sim_kernel.h"
#include "tests/fleet/fleet_util.h"
#include "tests/testutil/testutil.h"

namespace ironboot::fleet {
namespace {

using namespace std::chrono_literals;
using testing::ScriptedBootServer;

constexpr auto kWait = std::chrono::seconds(15);

// A fleet of `cps` control planes and `workers` workers on fresh addresses.
class FleetTest : public ::testing::Test {
 protected:
  FleetTest() : ca_(testing::MakeOsCa()), client_(testing::MakeClientCert(ca_)) {
    testing::ServeVersion(boot_, "v1.12.0");
  }

  FleetOptions Options(int cps, int workers) {
    FleetOptions o;
    o.boot_server_url = boot_.url();
    o.os_ca = ca_;
    o.reboot_delay = 150ms;
    o.retry_interval = 100ms;
    o.etcd_join_delay = 100ms;
    std::string prefix = testing::NextAddressPrefix();
    for (int i = 0; i < cps + workers; ++i) {
      NodeSpec s;
      bool cp = i < cps;
      s.name = cp ? "cp" + std::to_string(i + 1) : "w" + std::to_string(i - cps + 1);
      s.role = cp ? NodeRole::kControlPlane : NodeRole::kWorker;
      char mac[18];
      std::snprintf(mac, sizeof(mac), "52:54:00:00:00:%02x", i + 1);
      s.mac = mac;
      s.address = prefix + std::to_string(101 + i);
      o.nodes.push_back(s);
    }
    return o;
  }

  void StartFleet(FleetOptions o) {
    for (const auto& n : o.nodes) {
      address_[n.name] = n.address;
    }
    auto f = Fleet::Start(std::move(o));
    ASSERT_TRUE(f) << f.error().message;
    fleet_ = std::move(*f);
  }

  std::string State(const std::string& node) { return fleet_->Record().Node(node)->state; }
  bool AllUp() {
    for (const auto& n : fleet_->Record().nodes) {
      if (n.state != "up") {
        return false;
      }
    }
    return true;
  }
  machine::MachineService::Stub& Api(const std::string& node) {
    auto& stub = stubs_[node];
    if (!stub) {
      stub = testing::Stub(address_.at(node), ca_.crt, client_);
    }
    return *stub;
  }
  grpc::Status Call(const std::string& node, auto method, const auto& request, auto* reply) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    return (Api(node).*method)(&ctx, request, reply);
  }
  std::string VersionOf(const std::string& node) {
    machine::VersionResponse r;
    auto st = Call(node, &machine::MachineService::Stub::Version, google::protobuf::Empty(), &r);
    return st.ok() ? r.messages(0).version().tag() : "error: " + st.error_message();
  }
  grpc::Status Reboot(const std::string& node) {
    machine::RebootResponse r;
    return Call(node, &machine::MachineService::Stub::Reboot, machine::RebootRequest(), &r);
  }
  grpc::Status Bootstrap(const std::string& node) {
    machine::BootstrapResponse r;
    return Call(node, &machine::MachineService::Stub::Bootstrap, machine::BootstrapRequest(), &r);
  }
  grpc::Status Upgrade(const std::string& node, const std::string& image, bool force = false) {
    machine::UpgradeRequest req;
    req.set_image(image);
    req.set_force(force);
    machine::UpgradeResponse r;
    return Call(node, &machine::MachineService::Stub::Upgrade, req, &r);
  }
  machine::EtcdMemberStatus EtcdStatus(const std::string& node) {
    machine::EtcdStatusResponse r;
    auto st = Call(node, &machine::MachineService::Stub::EtcdStatus, google::protobuf::Empty(), &r);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return st.ok() ? r.messages(0).member_status() : machine::EtcdMemberStatus();
  }
  // Bootstraps cp1 and waits for all `n` control planes in etcd.
  void BootstrapAndJoin(size_t n) {
    auto st = Bootstrap("cp1");
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_TRUE(
        testutil::WaitFor([&] { return fleet_->Record().etcd_members.size() == n; }, kWait));
  }

  ScriptedBootServer boot_;
  talos::CertAndKey ca_;
  talos::CertAndKey client_;
  std::unique_ptr<Fleet> fleet_;
  std::map<std::string, std::string> address_;
  std::map<std::string, std::unique_ptr<machine::MachineService::Stub>> stubs_;
};

// 3 control planes + 2 workers boot through the chain (boot.ipxe -> ipxe ->
// kernel, initrd, config) and report the served kernel's version, platform
// metal, and their services.
TEST_F(FleetTest, NodesBootAndReportServedVersion) {
  StartFleet(Options(3, 2));
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  for (const auto& name : {"cp1", "cp2", "cp3", "w1", "w2"}) {
    EXPECT_EQ(VersionOf(name), "v1.12.0") << name;
    auto rec = *fleet_->Record().Node(name);
    EXPECT_EQ(rec.boot_count, 1);
    EXPECT_EQ(rec.installed_version, "v1.12.0");
    EXPECT_EQ(rec.kernel_url, boot_.url() + "/assets/vmlinuz");
    EXPECT_EQ(
        rec.config_url, boot_.url() + "/assets/config?mac=" + [&] {
          std::string m = rec.spec.mac;
          std::replace(m.begin(), m.end(), ':', '-');
          return m;
        }());
    EXPECT_TRUE(rec.down_intervals.empty());
  }
  auto targets = boot_.targets();
  EXPECT_NE(
      std::find(targets.begin(), targets.end(), "/ipxe?uuid=&mac=52-54-00-00-00-01&arch=x86_64"),
      targets.end());
  machine::VersionResponse v;
  ASSERT_TRUE(
      Call("w1", &machine::MachineService::Stub::Version, google::protobuf::Empty(), &v).ok());
  EXPECT_EQ(v.messages(0).platform().name(), "metal");
  EXPECT_EQ(v.messages(0).metadata().hostname(), "w1");

  machine::ServiceListResponse cp_services, w_services;
  ASSERT_TRUE(Call("cp1", &machine::MachineService::Stub::ServiceList, google::protobuf::Empty(),
                   &cp_services)
                  .ok());
  ASSERT_TRUE(Call("w1", &machine::MachineService::Stub::ServiceList, google::protobuf::Empty(),
                   &w_services)
                  .ok());
  std::vector<std::string> ids;
  for (const auto& s : cp_services.messages(0).services()) {
    ids.push_back(s.id());
    if (s.id() == "etcd") {
      EXPECT_EQ(s.state(), "Preparing");  // not bootstrapped yet
    }
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"apid", "etcd", "kubelet", "machined"}));
  EXPECT_EQ(w_services.messages(0).services_size(), 3);  // no etcd on workers
}

// Bootstrap on one control plane starts etcd (others join, a leader);
// a second Bootstrap anywhere is refused FAILED_PRECONDITION and recorded
// as a split-brain attempt; Bootstrap on a worker is refused.
TEST_F(FleetTest, BootstrapOnceThenRefusedAndRecorded) {
  StartFleet(Options(3, 1));
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  BootstrapAndJoin(3);
  auto second = Bootstrap("cp2");
  EXPECT_EQ(second.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(second.error_message().find("already bootstrapped (by cp1)"), std::string::npos);
  auto again = Bootstrap("cp1");
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto worker = Bootstrap("w1");
  EXPECT_EQ(worker.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  auto rec = fleet_->Record();
  EXPECT_EQ(rec.bootstrapped_by, "cp1");
  EXPECT_EQ(rec.Node("cp1")->bootstrap_calls, 2);
  EXPECT_EQ(rec.Node("cp2")->bootstrap_calls, 1);
  ASSERT_EQ(rec.split_brain.size(), 2u);
  EXPECT_NE(rec.split_brain[0].find("cp2: Bootstrap while etcd is already bootstrapped by cp1"),
            std::string::npos);

  machine::EtcdMemberListResponse members;
  ASSERT_TRUE(Call("cp3", &machine::MachineService::Stub::EtcdMemberList,
                   machine::EtcdMemberListRequest(), &members)
                  .ok());
  ASSERT_EQ(members.messages(0).members_size(), 3);
  EXPECT_EQ(members.messages(0).members(0).hostname(), "cp1");
  EXPECT_EQ(members.messages(0).members(0).peer_urls(0), "https://" + address_["cp1"] + ":2380");
  auto status = EtcdStatus("cp2");
  EXPECT_EQ(status.leader(), members.messages(0).members(0).id());
  EXPECT_EQ(status.member_id(), members.messages(0).members(1).id());
  EXPECT_TRUE(status.errors().empty());
}

// Reboot takes the node down (API gone) and back through the boot server;
// the record gets a closed down interval and a second boot.
TEST_F(FleetTest, RebootRecordsDownInterval) {
  auto o = Options(1, 1);
  o.reboot_delay = 500ms;
  StartFleet(o);
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  size_t requests_before = boot_.targets().size();
  ASSERT_TRUE(Reboot("w1").ok());
  ASSERT_TRUE(testutil::WaitFor([&] { return State("w1") == "down"; }, kWait));
  EXPECT_NE(VersionOf("w1").find("error"), std::string::npos);  // API down
  ASSERT_TRUE(testutil::WaitFor([&] { return State("w1") == "up"; }, kWait));
  auto rec = *fleet_->Record().Node("w1");
  EXPECT_EQ(rec.boot_count, 2);
  EXPECT_EQ(rec.reboot_calls, 1);
  ASSERT_EQ(rec.down_intervals.size(), 1u);
  ASSERT_TRUE(rec.down_intervals[0].up_at);
  EXPECT_EQ(rec.down_intervals[0].reason, "reboot");
  EXPECT_GE(*rec.down_intervals[0].up_at - rec.down_intervals[0].down_at, 500ms);
  EXPECT_GT(boot_.targets().size(), requests_before + 4);  // booted through the server again
  EXPECT_TRUE(testutil::WaitFor([&] { return VersionOf("w1") == "v1.12.0"; }, kWait));
  EXPECT_TRUE(fleet_->Record().Node("cp1")->down_intervals.empty());
}

// pxe-reboot: a node rebooted after the served kernel changed runs the new
// version; with old-version it comes back on the version it had.
TEST_F(FleetTest, RebootPicksUpServedKernelUnlessOldVersionFault) {
  auto o = Options(0, 2);
  o.faults["w2"] = NodeFaults{.old_version = true};
  StartFleet(o);
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  boot_.Set("/assets/vmlinuz", 200, SimKernel("v1.12.1"));
  ASSERT_TRUE(Reboot("w1").ok());
  ASSERT_TRUE(Reboot("w2").ok());
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        auto r = fleet_->Record();
        return r.Node("w1")->boot_count == 2 && r.Node("w2")->boot_count == 2;
      },
      kWait));
  EXPECT_EQ(VersionOf("w1"), "v1.12.1");
  EXPECT_EQ(VersionOf("w2"), "v1.12.0");
}

// never-returns: after a reboot the node stays down ("gone") and never asks
// the boot server again; clearing the fault lets it boot.
TEST_F(FleetTest, NeverReturnsFault) {
  auto o = Options(0, 1);
  o.faults["w1"] = NodeFaults{.never_returns = true};
  StartFleet(o);
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  ASSERT_TRUE(Reboot("w1").ok());
  ASSERT_TRUE(testutil::WaitFor([&] { return State("w1") == "gone"; }, kWait));
  size_t requests = boot_.targets().size();
  int attempts = fleet_->Record().Node("w1")->boot_attempts;
  // Several retry intervals pass without a boot attempt.
  EXPECT_FALSE(testutil::WaitFor(
      [&] { return fleet_->Record().Node("w1")->boot_attempts != attempts; }, 600ms));
  EXPECT_EQ(boot_.targets().size(), requests);
  auto rec = *fleet_->Record().Node("w1");
  ASSERT_EQ(rec.down_intervals.size(), 1u);
  EXPECT_FALSE(rec.down_intervals[0].up_at);
  ASSERT_TRUE(fleet_->SetFaults("w1", NodeFaults{}));
  EXPECT_TRUE(testutil::WaitFor([&] { return State("w1") == "up"; }, kWait));
}

// refuses-reboot: Reboot answers an error, is counted, and the node stays up.
TEST_F(FleetTest, RefusesRebootFault) {
  StartFleet(Options(0, 1));
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  ASSERT_TRUE(fleet_->SetFaults("w1", *ParseFaults("refuses-reboot")));
  auto st = Reboot("w1");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(st.error_message().find("refuses-reboot"), std::string::npos);
  auto rec = *fleet_->Record().Node("w1");
  EXPECT_EQ(rec.reboot_calls, 1);
  EXPECT_TRUE(rec.down_intervals.empty());
  EXPECT_EQ(rec.state, "up");
  EXPECT_EQ(VersionOf("w1"), "v1.12.0");
}

// slow-boot: a reboot takes reboot_delay + the extra boot time.
TEST_F(FleetTest, SlowBootFault) {
  auto o = Options(0, 1);
  o.faults["w1"] = NodeFaults{.slow_boot = 700ms};
  StartFleet(o);
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  auto first_up = *fleet_->Record().Node("w1")->first_up_at;
  ASSERT_TRUE(Reboot("w1").ok());
  ASSERT_TRUE(
      testutil::WaitFor([&] { return fleet_->Record().Node("w1")->boot_count == 2; }, kWait));
  auto d = fleet_->Record().Node("w1")->down_intervals.at(0);
  EXPECT_GE(*d.up_at - d.down_at, 150ms + 700ms);
  EXPECT_GT(first_up.time_since_epoch().count(), 0);
}

// etcd-unhealthy and a down member: other members' EtcdStatus lists an
// error naming it; control-plane Upgrade is refused unless forced; when the
// leader goes down the leader moves to a healthy member.
TEST_F(FleetTest, EtcdHealthGatesUpgradeAndLeaderMoves) {
  auto o = Options(3, 0);
  o.reboot_delay = 1500ms;
  StartFleet(o);
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  BootstrapAndJoin(3);
  ASSERT_TRUE(fleet_->SetFaults("cp3", NodeFaults{.etcd_unhealthy = true}));
  auto s = EtcdStatus("cp1");
  ASSERT_EQ(s.errors_size(), 1);
  EXPECT_NE(s.errors(0).find("(cp3) is unhealthy"), std::string::npos);
  EXPECT_EQ(EtcdStatus("cp3").errors(0), "etcdserver: this member is unhealthy (simulated fault)");
  auto refused = Upgrade("cp1", "ghcr.io/siderolabs/installer:v1.12.1");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("etcd member cp3 is not healthy"), std::string::npos);
  EXPECT_EQ(fleet_->Record().Node("cp1")->upgrade_calls, 1);
  EXPECT_TRUE(fleet_->Record().Node("cp1")->upgrade_images.empty());

  ASSERT_TRUE(fleet_->SetFaults("cp3", NodeFaults{}));
  uint64_t leader = EtcdStatus("cp2").leader();
  ASSERT_EQ(leader, fleet_->Record().etcd_members.at(0).id);  // cp1
  ASSERT_TRUE(Reboot("cp1").ok());
  ASSERT_TRUE(testutil::WaitFor([&] { return State("cp1") == "down"; }, kWait));
  auto during = EtcdStatus("cp2");
  EXPECT_NE(during.leader(), 0u);
  EXPECT_NE(during.leader(), leader);
  ASSERT_EQ(during.errors_size(), 1);
  EXPECT_NE(during.errors(0).find("(cp1) is unhealthy"), std::string::npos);
  // Members stay listed across the reboot; a second down member costs quorum.
  EXPECT_EQ(fleet_->Record().etcd_members.size(), 3u);
  ASSERT_TRUE(fleet_->SetFaults("cp3", NodeFaults{.etcd_unhealthy = true}));
  EXPECT_EQ(EtcdStatus("cp2").leader(), 0u);
  ASSERT_TRUE(fleet_->SetFaults("cp3", NodeFaults{}));
  ASSERT_TRUE(testutil::WaitFor([&] { return State("cp1") == "up"; }, kWait));
  EXPECT_EQ(EtcdStatus("cp1").errors_size(), 0);
}

// A control-plane Upgrade with exactly 2 etcd members is refused unless
// forced; a forced one installs the image's tag and reboots the node.
TEST_F(FleetTest, UpgradeTwoMembersRefusedUnlessForced) {
  auto o = Options(2, 0);
  StartFleet(o);
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  BootstrapAndJoin(2);
  auto refused = Upgrade("cp2", "ghcr.io/siderolabs/installer:v1.12.1");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("etcd member count(2)"), std::string::npos);
  boot_.Set("/ipxe", 200, "#!ipxe\nexit\n");  // talos-upgrade: installed nodes boot from disk
  auto forced = Upgrade("cp2", "ghcr.io/siderolabs/installer:v1.12.1", true);
  ASSERT_TRUE(forced.ok()) << forced.error_message();
  ASSERT_TRUE(
      testutil::WaitFor([&] { return fleet_->Record().Node("cp2")->boot_count == 2; }, kWait));
  auto rec = *fleet_->Record().Node("cp2");
  EXPECT_EQ(rec.version, "v1.12.1");
  EXPECT_EQ(rec.installed_version, "v1.12.1");
  EXPECT_EQ(rec.upgrade_images, std::vector<std::string>{"ghcr.io/siderolabs/installer:v1.12.1"});
  EXPECT_EQ(rec.down_intervals.at(0).reason, "upgrade");
  EXPECT_EQ(VersionOf("cp2"), "v1.12.1");
  auto bad = Upgrade("cp1", "ghcr.io/siderolabs/installer", true);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("has no tag"), std::string::npos);
}

// A boot server that is down or answers non-200 is retried until it works;
// a kernel that is not a stand-in kernel fails the boot with a clear error.
TEST_F(FleetTest, BootRetriesAndBadKernelError) {
  boot_.Set("/boot.ipxe", 503, "busy\n");
  StartFleet(Options(0, 1));
  ASSERT_TRUE(
      testutil::WaitFor([&] { return fleet_->Record().Node("w1")->boot_attempts >= 2; }, kWait));
  EXPECT_EQ(fleet_->Record().Node("w1")->last_error,
            "iPXE script GET " + boot_.url() + "/boot.ipxe: HTTP 503 (want 200)");
  boot_.Set("/assets/vmlinuz", 200, "MZ not a sim kernel\n");
  testing::ServeVersion(boot_, "v1.12.0");
  boot_.Set("/assets/vmlinuz", 200, "MZ not a sim kernel\n");
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        return fleet_->Record().Node("w1")->last_error.find("not a simulated Talos kernel") !=
               std::string::npos;
      },
      kWait));
  EXPECT_EQ(fleet_->Record().Node("w1")->last_error,
            boot_.url() +
                "/assets/vmlinuz: not a simulated Talos kernel (want first line "
                "\"IRONBOOT-SIM-KERNEL talos=vX.Y.Z\", got \"MZ not a sim kernel\")");
  EXPECT_EQ(State("w1"), "booting");
  boot_.Set("/assets/vmlinuz", 200, SimKernel("v1.13.9"));
  ASSERT_TRUE(testutil::WaitFor([&] { return State("w1") == "up"; }, kWait));
  EXPECT_EQ(VersionOf("w1"), "v1.13.9");
  EXPECT_EQ(fleet_->Record().Node("w1")->last_error, "");
}

// A boot server that is not listening at all is retried (connection refused).
TEST_F(FleetTest, UnreachableBootServerRetried) {
  auto o = Options(0, 1);
  o.boot_server_url = "http://127.0.0.1:" + std::to_string(testutil::FreePort());
  StartFleet(o);
  ASSERT_TRUE(
      testutil::WaitFor([&] { return fleet_->Record().Node("w1")->boot_attempts >= 3; }, kWait));
  auto rec = *fleet_->Record().Node("w1");
  EXPECT_NE(rec.last_error.find("GET " + o.boot_server_url + "/boot.ipxe: "), std::string::npos)
      << rec.last_error;
  EXPECT_EQ(rec.state, "booting");
}

// `exit` for a node that never installed Talos: it stays down, retrying.
TEST_F(FleetTest, ExitWithoutInstalledOs) {
  boot_.Set("/ipxe", 200, "#!ipxe\nexit\n");
  StartFleet(Options(0, 1));
  ASSERT_TRUE(
      testutil::WaitFor([&] { return fleet_->Record().Node("w1")->boot_attempts >= 2; }, kWait));
  EXPECT_EQ(fleet_->Record().Node("w1")->last_error,
            "boot server said exit (boot from disk) but no Talos is installed on this node");
  EXPECT_EQ(State("w1"), "booting");
}

// Clients without a certificate, or with one from another CA, are refused;
// a client that does not trust the os CA refuses the node.
TEST_F(FleetTest, ClientWithoutValidCertRefused) {
  StartFleet(Options(0, 1));
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  auto other_ca = testing::MakeOsCa();
  for (const auto& [what, stub] :
       {std::pair{"no client cert", testing::Stub(address_["w1"], ca_.crt, talos::CertAndKey{})},
        std::pair{"cert from another CA",
                  testing::Stub(address_["w1"], ca_.crt, testing::MakeClientCert(other_ca))},
        std::pair{"server not trusted", testing::Stub(address_["w1"], other_ca.crt, client_)}}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    machine::VersionResponse r;
    auto st = stub->Version(&ctx, google::protobuf::Empty(), &r);
    EXPECT_FALSE(st.ok()) << what;
    EXPECT_EQ(r.messages_size(), 0) << what;
  }
  EXPECT_EQ(VersionOf("w1"), "v1.12.0");
}

// Kubeconfig streams a .tar.gz holding one file `kubeconfig` (control planes).
TEST_F(FleetTest, KubeconfigIsTarGz) {
  StartFleet(Options(1, 0));
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  grpc::ClientContext ctx;
  auto reader = Api("cp1").Kubeconfig(&ctx, google::protobuf::Empty());
  common::Data chunk;
  std::string archive;
  int chunks = 0;
  while (reader->Read(&chunk)) {
    archive += chunk.bytes();
    ++chunks;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_GE(chunks, 1);
  testutil::TempDir dir;
  testutil::WriteFile(dir / "k.tar.gz", archive);
  auto list = testutil::Run({"tar", "-tzf", (dir / "k.tar.gz").string()});
  EXPECT_EQ(list.output, "kubeconfig\n");
  auto x = testutil::Run({"tar", "-xzf", (dir / "k.tar.gz").string(), "-C", dir.path().string()});
  ASSERT_EQ(x.exit_code, 0);
  EXPECT_NE(
      testutil::ReadFile(dir / "kubeconfig").find("server: https://" + address_["cp1"] + ":6443"),
      std::string::npos);
}

// GET /fleet on the status address returns the record as JSON; POST
// /fleet/faults sets a fault at runtime; bad requests say what is wanted.
TEST_F(FleetTest, StatusApiJson) {
  auto o = Options(1, 1);
  o.status_address = "127.0.0.1:0";
  StartFleet(o);
  ASSERT_NE(fleet_->status_port(), 0);
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  auto r = testutil::HttpGet(fleet_->status_port(), "/fleet");
  ASSERT_EQ(r.status, 200);
  auto j = nlohmann::json::parse(r.body);
  ASSERT_EQ(j["nodes"].size(), 2u);
  EXPECT_EQ(j["nodes"][0]["name"], "cp1");
  EXPECT_EQ(j["nodes"][0]["role"], "controlplane");
  EXPECT_EQ(j["nodes"][0]["state"], "up");
  EXPECT_EQ(j["nodes"][0]["version"], "v1.12.0");
  EXPECT_EQ(j["nodes"][0]["boot_count"], 1);
  EXPECT_EQ(j["nodes"][1]["address"], address_["w1"]);
  auto set = testutil::HttpRequest(fleet_->status_port(), "POST",
                                   "/fleet/faults?node=w1&faults=refuses-reboot");
  EXPECT_EQ(set.status, 200) << set.body;
  EXPECT_TRUE(fleet_->Record().Node("w1")->faults.refuses_reboot);
  auto unknown =
      testutil::HttpRequest(fleet_->status_port(), "POST", "/fleet/faults?node=zz&faults=none");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body, "fleet: no node named \"zz\"\n");
  auto bad =
      testutil::HttpRequest(fleet_->status_port(), "POST", "/fleet/faults?node=w1&faults=explode");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("unknown fault \"explode\""), std::string::npos);
  EXPECT_EQ(testutil::HttpGet(fleet_->status_port(), "/nope").status, 404);
}

// Stop() returns promptly even while a node waits on a boot server that
// accepted the connection but never answers.
TEST_F(FleetTest, StopCancelsHangingBootRequest) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);  // never accepted: requests hang
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto o = Options(0, 1);
  o.boot_server_url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  o.http_timeout = 60s;
  StartFleet(o);
  ASSERT_TRUE(
      testutil::WaitFor([&] { return fleet_->Record().Node("w1")->boot_attempts == 1; }, kWait));
  auto start = std::chrono::steady_clock::now();
  fleet_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  close(fd);
}

// A node whose API address is already taken (another fleet) does not come
// up and says why; it comes up once the address is free.
TEST_F(FleetTest, ApiAddressInUseReported) {
  auto o = Options(0, 1);
  StartFleet(o);
  ASSERT_TRUE(testutil::WaitFor([&] { return AllUp(); }, kWait));
  auto second = Fleet::Start(o);
  ASSERT_TRUE(second) << second.error().message;
  ASSERT_TRUE(testutil::WaitFor([&] { return !(*second)->Record().Node("w1")->last_error.empty(); },
                                kWait));
  EXPECT_EQ((*second)->Record().Node("w1")->last_error,
            "Talos API: cannot listen on " + o.nodes[0].address +
                ":50000: Address already in use (another fleet, or a test, already serves this "
                "address)");
  EXPECT_EQ((*second)->Record().Node("w1")->state, "booting");
  fleet_->Stop();
  EXPECT_TRUE(
      testutil::WaitFor([&] { return (*second)->Record().Node("w1")->state == "up"; }, kWait));
}

// Start refuses bad node specs and faults naming the node and field.
TEST_F(FleetTest, StartValidatesOptions) {
  auto o = Options(0, 2);
  o.nodes[1].mac = "52:54:00:zz";
  auto bad_mac = Fleet::Start(o);
  ASSERT_FALSE(bad_mac);
  EXPECT_EQ(bad_mac.error().message,
            "fleet: node \"w2\": mac \"52:54:00:zz\" is not a MAC address (want 6 octets like "
            "52:54:00:12:34:56)");
  o = Options(0, 2);
  o.nodes[1].address = o.nodes[0].address;
  auto dup = Fleet::Start(o);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().message,
            "fleet: node \"w2\": address " + o.nodes[0].address + " used by another node");
  o = Options(0, 1);
  o.nodes[0].address = "127.0.4";
  EXPECT_NE(Fleet::Start(o).error().message.find("address \"127.0.4\" is not an IPv4 address"),
            std::string::npos);
  o = Options(0, 1);
  o.faults["ghost"] = NodeFaults{};
  EXPECT_EQ(Fleet::Start(o).error().message, "fleet: fault for unknown node \"ghost\"");
  o = Options(0, 1);
  o.boot_server_url = "127.0.0.1:8080";
  EXPECT_NE(Fleet::Start(o).error().message.find("want http://host:port"), std::string::npos);
}

// Fault and node-spec words parse; bad ones name the word and the choices.
TEST(FleetParse, FaultsAndNodeSpecs) {
  auto f = ParseFaults("never-returns,slow-boot=2s,etcd-unhealthy");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->never_returns);
  EXPECT_TRUE(f->etcd_unhealthy);
  EXPECT_EQ(f->slow_boot, std::chrono::seconds(2));
  EXPECT_EQ(FaultsText(*f), "never-returns,etcd-unhealthy,slow-boot=2000ms");
  EXPECT_EQ(FaultsText(*ParseFaults("none")), "none");
  EXPECT_EQ(ParseFaults("slow-boot=fast").error().message,
            "fault \"slow-boot=fast\": want slow-boot=<duration> (e.g. 5s, 500ms)");
  EXPECT_NE(ParseFaults("reboot-loop")
                .error()
                .message.find("unknown fault \"reboot-loop\" (want never-returns"),
            std::string::npos);
  auto spec = ParseNodeSpec("name=cp1,role=controlplane,mac=52-54-00-AA-00-01,address=127.0.4.101");
  ASSERT_TRUE(spec) << spec.error().message;
  EXPECT_EQ(spec->mac, "52:54:00:aa:00:01");
  EXPECT_EQ(spec->role, NodeRole::kControlPlane);
  EXPECT_EQ(ParseNodeSpec("name=cp1,role=master,mac=x,address=y").error().message,
            "node \"name=cp1,role=master,mac=x,address=y\": role \"master\" (want controlplane or "
            "worker)");
  EXPECT_EQ(ParseNodeSpec("name=cp1,role=worker,address=y").error().message,
            "node \"name=cp1,role=worker,address=y\": missing mac");
  EXPECT_NE(ParseNodeSpec("name=cp1,ip=1").error().message.find("unknown key \"ip\""),
            std::string::npos);
  EXPECT_EQ(ParseFleetDuration("2s").value(), std::chrono::seconds(2));
  EXPECT_EQ(ParseFleetDuration("1h").value(), std::chrono::hours(1));
  EXPECT_EQ(ParseFleetDuration("2x").error().message, "duration \"2x\": want e.g. 500ms, 2s or 1m");
  EXPECT_FALSE(ParseFleetDuration("soon"));
}

}  // namespace
}  // namespace ironboot::fleet
