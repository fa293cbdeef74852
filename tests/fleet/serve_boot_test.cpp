// The simulated fleet against a real `ironboot serve` (Matchbox mode), and
// the `ironboot fleet` command as a separate process watched through GET /fleet.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "fleet/fleet.h"
#include "fleet/sim_kernel.h"
#include "talos/secrets_bundle.h"
#include "tests/fleet/fleet_util.h"
#include "tests/testutil/testutil.h"

namespace ironboot::fleet {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Machine {
  std::string name;
  NodeRole role;
  std::string mac;
  std::string address;
};

// A Matchbox data dir: a group and profile per machine, stand-in assets for
// v1.12.0, a machine config per machine served from /assets/configs/.
void WriteDataDir(const fs::path& dir, const std::vector<Machine>& machines, int port) {
  ASSERT_TRUE(WriteSimAssets(dir / "assets/talos/v1.12.0", "v1.12.0"));
  for (const auto& m : machines) {
    nlohmann::json group = {
        {"id", m.name}, {"name", m.name}, {"profile", m.name}, {"selector", {{"mac", m.mac}}}};
    nlohmann::json profile = {
        {"id", m.name},
        {"name", m.name},
        {"boot",
         {{"kernel", "/assets/talos/v1.12.0/vmlinuz-amd64"},
          {"initrd", {"/assets/talos/v1.12.0/initramfs-amd64.xz"}},
          {"args",
           {"initrd=initramfs-amd64.xz", "talos.platform=metal", "slab_nomerge", "pti=on",
            "talos.config=http://127.0.0.1:" + std::to_string(port) + "/assets/configs/" + m.name +
                ".yaml"}}}}};
    testutil::WriteFile(dir / "groups" / (m.name + ".json"), group.dump(2));
    testutil::WriteFile(dir / "profiles" / (m.name + ".json"), profile.dump(2));
    testutil::WriteFile(
        dir / "assets/configs" / (m.name + ".yaml"),
        std::string("version: v1alpha1\nmachine:\n  type: ") + NodeRoleName(m.role) + "\n");
  }
}

std::vector<Machine> Machines() {
  std::string prefix = testing::NextAddressPrefix();
  return {{"cp1", NodeRole::kControlPlane, "52:54:00:10:00:01", prefix + "101"},
          {"cp2", NodeRole::kControlPlane, "52:54:00:10:00:02", prefix + "102"},
          {"cp3", NodeRole::kControlPlane, "52:54:00:10:00:03", prefix + "103"},
          {"w1", NodeRole::kWorker, "52:54:00:10:00:11", prefix + "111"},
          {"w2", NodeRole::kWorker, "52:54:00:10:00:12", prefix + "112"}};
}

// Five nodes boot from a real `ironboot serve`: its access log shows every
// step of each boot coming from that node's own address, and each node's
// Talos API reports the version of the kernel the server gave it; a reboot
// goes through the server again.
TEST(FleetServe, BootsFromRealServeWithOwnAddresses) {
  testutil::TempDir dir;
  int port = testutil::FreePort();
  auto machines = Machines();
  WriteDataDir(dir / "data", machines, port);
  testutil::Process serve({IRONBOOT_BINARY, "serve", "-address",
                           "127.0.0.1:" + std::to_string(port), "-data-path",
                           (dir / "data").string()});
  ASSERT_TRUE(testutil::WaitFor([&] { return testutil::Accepts(port); })) << serve.Output();

  FleetOptions o;
  o.boot_server_url = "http://127.0.0.1:" + std::to_string(port);
  o.os_ca = testing::MakeOsCa();
  o.reboot_delay = 200ms;
  o.retry_interval = 200ms;
  for (const auto& m : machines) {
    o.nodes.push_back(NodeSpec{m.name, m.role, m.mac, m.address, ""});
  }
  auto fleet = Fleet::Start(o);
  ASSERT_TRUE(fleet) << fleet.error().message;
  auto all_up = [&] {
    for (const auto& n : (*fleet)->Record().nodes) {
      if (n.state != "up") {
        return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(testutil::WaitFor(all_up, 20s))
      << ToJson((*fleet)->Record()).dump(2) << serve.Output();

  auto client = testing::MakeClientCert(o.os_ca);
  for (const auto& m : machines) {
    std::string log = serve.Output();
    for (const std::string& target : {std::string("/boot.ipxe"),
                                      "/ipxe?uuid=&mac=" +
                                          [&] {
                                            std::string h = m.mac;
                                            std::replace(h.begin(), h.end(), ':', '-');
                                            return h;
                                          }(),
                                      std::string("/assets/talos/v1.12.0/vmlinuz-amd64"),
                                      std::string("/assets/talos/v1.12.0/initramfs-amd64.xz"),
                                      "/assets/configs/" + m.name + ".yaml"}) {
      EXPECT_NE(log.find("client=" + m.address + " method=GET target=\"" + target),
                std::string::npos)
          << m.name << " " << target;
    }
    auto stub = testing::Stub(m.address, o.os_ca.crt, client);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    machine::VersionResponse v;
    auto st = stub->Version(&ctx, google::protobuf::Empty(), &v);
    ASSERT_TRUE(st.ok()) << m.name << ": " << st.error_message();
    EXPECT_EQ(v.messages(0).version().tag(), "v1.12.0");
    EXPECT_EQ(v.messages(0).metadata().hostname(), m.name);
  }

  // The served kernel changes (pxe-reboot) and w1 reboots onto it.
  ASSERT_TRUE(WriteSimAssets(dir / "data/assets/talos/v1.12.0", "v1.12.1"));
  auto stub = testing::Stub(machines[3].address, o.os_ca.crt, client);
  grpc::ClientContext ctx;
  machine::RebootResponse reboot;
  ASSERT_TRUE(stub->Reboot(&ctx, machine::RebootRequest(), &reboot).ok());
  ASSERT_TRUE(
      testutil::WaitFor([&] { return (*fleet)->Record().Node("w1")->boot_count == 2; }, 20s));
  auto rec = *(*fleet)->Record().Node("w1");
  EXPECT_EQ(rec.version, "v1.12.1");
  ASSERT_EQ(rec.down_intervals.size(), 1u);
  EXPECT_TRUE(rec.down_intervals[0].up_at);
  serve.Signal(SIGTERM);
}

// `ironboot fleet` runs nodes in its own process; a test watches them via
// GET /fleet, and SIGTERM stops it cleanly.
TEST(FleetCommand, RunsUntilSigtermAndServesStatus) {
  testutil::TempDir dir;
  testing::ScriptedBootServer boot;
  testing::ServeVersion(boot, "v1.12.0");
  // A real bundle from `ironboot secrets gen`; the fleet uses its os CA.
  auto gen =
      testutil::Run({IRONBOOT_BINARY, "secrets", "gen", "--out", (dir / "secrets.yaml").string()});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::string prefix = testing::NextAddressPrefix();
  int status_port = testutil::FreePort();
  testutil::Process fleet(
      {IRONBOOT_BINARY, "fleet", "--boot-server", boot.url(), "--secrets",
       (dir / "secrets.yaml").string(), "--node",
       "name=cp1,role=controlplane,mac=52:54:00:20:00:01,address=" + prefix + "101", "--node",
       "name=w1,role=worker,mac=52:54:00:20:00:02,address=" + prefix + "102", "--fault",
       "w1=refuses-reboot", "--reboot-delay", "200ms", "--status-address",
       "127.0.0.1:" + std::to_string(status_port)});
  nlohmann::json j;
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        auto r = testutil::HttpGet(status_port, "/fleet");
        if (r.status != 200) {
          return false;
        }
        j = nlohmann::json::parse(r.body);
        return j["nodes"][0]["state"] == "up" && j["nodes"][1]["state"] == "up";
      },
      20s))
      << fleet.Output();
  EXPECT_EQ(j["nodes"][0]["version"], "v1.12.0");
  EXPECT_EQ(j["nodes"][1]["faults"], "refuses-reboot");
  EXPECT_TRUE(fleet.Signal(SIGTERM));
  EXPECT_EQ(fleet.Wait(10s), 0) << fleet.Output();
}

// --repo takes the nodes from a cluster repo's Machine documents (the
// homelab example moved onto loopback addresses): name, role, MAC, address.
TEST(FleetCommand, NodesFromRepo) {
  testutil::TempDir dir;
  std::string prefix = testing::NextAddressPrefix();  // "127.A.B."
  auto copy = testutil::Sh("cp -r " + std::string(IRONBOOT_SOURCE_DIR) + "/examples/homelab " +
                           (dir / "repo").string() + " && find " + (dir / "repo").string() +
                           " -name '*.yaml' | xargs sed -i 's/10\\.0\\.4\\./" + prefix + "/g'");
  ASSERT_EQ(copy.exit_code, 0) << copy.output;
  auto gen =
      testutil::Run({IRONBOOT_BINARY, "secrets", "gen", "--out", (dir / "secrets.yaml").string()});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  testing::ScriptedBootServer boot;
  testing::ServeVersion(boot, "v1.11.3");
  int status_port = testutil::FreePort();
  testutil::Process fleet({IRONBOOT_BINARY, "fleet", "--boot-server", boot.url(), "--secrets",
                           (dir / "secrets.yaml").string(), "--repo", (dir / "repo").string(),
                           "--status-address", "127.0.0.1:" + std::to_string(status_port)});
  nlohmann::json j;
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        auto r = testutil::HttpGet(status_port, "/fleet");
        if (r.status != 200) {
          return false;
        }
        j = nlohmann::json::parse(r.body);
        for (const auto& n : j["nodes"]) {
          if (n["state"] != "up") {
            return false;
          }
        }
        return true;
      },
      20s))
      << fleet.Output();
  ASSERT_EQ(j["nodes"].size(), 3u);
  EXPECT_EQ(j["nodes"][0]["name"], "controlplane1");
  EXPECT_EQ(j["nodes"][0]["role"], "controlplane");
  EXPECT_EQ(j["nodes"][0]["address"], prefix + "101");
  EXPECT_EQ(j["nodes"][0]["version"], "v1.11.3");
  EXPECT_TRUE(fleet.Signal(SIGTERM));
  EXPECT_EQ(fleet.Wait(10s), 0) << fleet.Output();
}

// Bad flags name the flag or node and what is wanted; exit code 2.
TEST(FleetCommand, BadFlags) {
  testutil::TempDir dir;
  auto gen = testutil::Run({IRONBOOT_BINARY, "secrets", "gen", "--out", (dir / "s.yaml").string()});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  std::string secrets = (dir / "s.yaml").string();
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {IRONBOOT_BINARY, "fleet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return testutil::Run(argv);
  };
  auto no_server = run({"--secrets", secrets});
  EXPECT_EQ(no_server.exit_code, 2);
  EXPECT_NE(no_server.output.find("--boot-server is required"), std::string::npos)
      << no_server.output;
  auto bad_node = run({"--boot-server", "http://127.0.0.1:1", "--secrets", secrets, "--node",
                       "name=cp1,role=boss"});
  EXPECT_EQ(bad_node.exit_code, 2);
  EXPECT_NE(bad_node.output.find(
                "--node: node \"name=cp1,role=boss\": role \"boss\" (want controlplane or worker)"),
            std::string::npos)
      << bad_node.output;
  auto bad_fault =
      run({"--boot-server", "http://127.0.0.1:1", "--secrets", secrets, "--node",
           "name=w1,role=worker,mac=52:54:00:00:00:01,address=127.0.9.1", "--fault", "w1=explode"});
  EXPECT_EQ(bad_fault.exit_code, 2);
  EXPECT_NE(bad_fault.output.find("--fault \"w1=explode\": unknown fault \"explode\""),
            std::string::npos)
      << bad_fault.output;
  auto missing =
      run({"--boot-server", "http://127.0.0.1:1", "--secrets", (dir / "nope.yaml").string(),
           "--node", "name=w1,role=worker,mac=52:54:00:00:00:01,address=127.0.9.1"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nope.yaml"), std::string::npos) << missing.output;
}

}  // namespace
}  // namespace ironboot::fleet
