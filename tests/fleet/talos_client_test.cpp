// The simulated fleet through ironboot's own Talos API client
// (talos::TalosApiClient), the way the controller sees real nodes.

#include <gtest/gtest.h>

#include "fleet/fleet.h"
#include "fleet/sim_etcd.h"
#include "talos/api_client.h"
#include "tests/fleet/fleet_util.h"
#include "tests/testutil/testutil.h"

namespace ironboot::fleet {
namespace {

using namespace std::chrono_literals;

// Version, Services, Bootstrap (once; twice refused), EtcdMembers,
// EtcdStatus, Upgrade refused on 2 members (kInvalid), Reboot (down and
// back), Kubeconfig unpacked by the client: all through TalosApiClient.
TEST(FleetTalosClient, ControllerViewOfTheFleet) {
  testing::ScriptedBootServer boot;
  testing::ServeVersion(boot, "v1.12.0");
  FleetOptions o;
  o.boot_server_url = boot.url();
  o.os_ca = testing::MakeOsCa();
  o.reboot_delay = 200ms;
  o.etcd_join_delay = 100ms;
  std::string prefix = testing::NextAddressPrefix();
  o.nodes = {{"cp1", NodeRole::kControlPlane, "52:54:00:30:00:01", prefix + "101", ""},
             {"cp2", NodeRole::kControlPlane, "52:54:00:30:00:02", prefix + "102", ""},
             {"w1", NodeRole::kWorker, "52:54:00:30:00:03", prefix + "103", ""}};
  auto fleet = Fleet::Start(o);
  ASSERT_TRUE(fleet) << fleet.error().message;
  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        for (const auto& n : (*fleet)->Record().nodes) {
          if (n.state != "up") {
            return false;
          }
        }
        return true;
      },
      15s));

  auto cert = testing::MakeClientCert(o.os_ca);
  auto client =
      talos::TalosApiClient::Create(talos::TalosCredentials{o.os_ca.crt, cert.crt, cert.key});
  ASSERT_TRUE(client) << client.error().message;
  auto& api = **client;
  const std::string cp1 = prefix + "101", cp2 = prefix + "102", w1 = prefix + "103";

  auto v = api.Version(w1);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->tag, "v1.12.0");
  EXPECT_EQ(v->platform, "metal");
  auto services = api.Services(cp1);
  ASSERT_TRUE(services) << services.error().message;
  EXPECT_EQ(services->size(), 4u);

  ASSERT_TRUE(api.Bootstrap(cp1));
  auto twice = api.Bootstrap(cp2);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, ErrorCode::kInvalid);
  EXPECT_NE(twice.error().message.find("already bootstrapped"), std::string::npos)
      << twice.error().message;
  EXPECT_EQ((*fleet)->Record().split_brain.size(), 1u);

  ASSERT_TRUE(testutil::WaitFor(
      [&] {
        auto m = api.EtcdMembers(cp2);
        return m && m->size() == 2;
      },
      15s));
  auto status = api.EtcdStatus(cp2);
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->leader, SimEtcd::MemberId("cp1"));
  auto refused = api.Upgrade(cp2, "ghcr.io/siderolabs/installer:v1.12.1", false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalid);
  EXPECT_NE(refused.error().message.find("etcd member count(2)"), std::string::npos)
      << refused.error().message;

  auto kubeconfig = api.Kubeconfig(cp1);
  ASSERT_TRUE(kubeconfig) << kubeconfig.error().message;
  EXPECT_NE(kubeconfig->find("server: https://" + cp1 + ":6443"), std::string::npos);

  ASSERT_TRUE(api.Reboot(w1, talos::RebootMode::kDefault));
  ASSERT_TRUE(testutil::WaitFor([&] { return (*fleet)->Record().Node("w1")->state != "up"; }, 15s));
  ASSERT_TRUE(
      testutil::WaitFor([&] { return (*fleet)->Record().Node("w1")->boot_count == 2; }, 15s));
  ASSERT_TRUE(testutil::WaitFor([&] { return api.Version(w1).has_value(); }, 15s));
  EXPECT_EQ((*fleet)->Record().Node("w1")->down_intervals.size(), 1u);

  // A client certificate from another CA is refused. (TalosApiClient says
  // kUnauthorized when its TLS probe sees the refusal; against this server it
  // has been seen to report kUnavailable "Socket closed", so both are accepted.)
  auto other = testing::MakeOsCa();
  auto bad_cert = testing::MakeClientCert(other);
  auto stranger = talos::TalosApiClient::Create(
      talos::TalosCredentials{o.os_ca.crt, bad_cert.crt, bad_cert.key});
  ASSERT_TRUE(stranger);
  auto denied = (*stranger)->Version(w1);
  ASSERT_FALSE(denied);
  EXPECT_TRUE(denied.error().code == ErrorCode::kUnauthorized ||
              denied.error().code == ErrorCode::kUnavailable)
      << denied.error().message;
  EXPECT_NE(denied.error().message.find(w1 + ":50000 Version"), std::string::npos)
      << denied.error().message;
}

}  // namespace
}  // namespace ironboot::fleet
