#include "fleet/ipxe_script.h"

#include <gtest/gtest.h>

#include <set>

#include "fleet/sim_etcd.h"
#include "fleet/sim_kernel.h"

namespace ironboot::fleet {
namespace {

// iPXE settings expand like iPXE: hexhyp MAC, uristring, unknown -> "".
TEST(IpxeScript, ExpandsSettings) {
  IpxeSettings s;
  s.mac = "52:54:00:12:34:56";
  s.uuid = "u-1";
  EXPECT_EQ(
      ExpandSettings(
          "mac=${mac:hexhyp}&m=${net0/mac}&u=${uuid}&x=${nosuch}&a=${buildarch:uristring}", s),
      "mac=52-54-00-12-34-56&m=52:54:00:12:34:56&u=u-1&x=&a=x86_64");
  s.hostname = "a b";
  EXPECT_EQ(ExpandSettings("${hostname:uristring}", s), "a%20b");
  EXPECT_EQ(ExpandSettings("no ${ end", s), "no ${ end");
}

// Relative kernel/chain URLs resolve against the script's URL like iPXE.
TEST(IpxeScript, ResolvesRelativeUrls) {
  EXPECT_EQ(ResolveUrl("http://h:8080/boot.ipxe", "ipxe?mac=x"), "http://h:8080/ipxe?mac=x");
  EXPECT_EQ(ResolveUrl("http://h:8080/ipxe?mac=x", "/assets/k"), "http://h:8080/assets/k");
  EXPECT_EQ(ResolveUrl("http://h/a/b/s.ipxe?q=/z", "k"), "http://h/a/b/k");
  EXPECT_EQ(ResolveUrl("http://h/x", "http://other/k"), "http://other/k");
  EXPECT_EQ(ResolveUrl("http://h:1", "k"), "http://h:1/k");
}

// kernel/initrd/chain/exit/boot are read; other commands are skipped.
TEST(IpxeScript, ParsesBootCommands) {
  auto c = ParseIpxeScript(
      "#!ipxe\r\n# comment\necho hi\nkernel --name vmlinuz /assets/k talos.platform=metal "
      "talos.config=http://c/x\n"
      "initrd /assets/i\nboot\n",
      "http://h:1/ipxe?mac=a");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->size(), 3u);
  EXPECT_EQ((*c)[0].kind, IpxeCommand::Kind::kKernel);
  EXPECT_EQ((*c)[0].url, "http://h:1/assets/k");
  EXPECT_EQ(KernelArg((*c)[0].args, "talos.config"), "http://c/x");
  EXPECT_EQ(KernelArg((*c)[0].args, "talos.platform"), "metal");
  EXPECT_EQ(KernelArg((*c)[0].args, "absent"), "");
  EXPECT_EQ((*c)[1].kind, IpxeCommand::Kind::kInitrd);
  EXPECT_EQ((*c)[1].url, "http://h:1/assets/i");
  EXPECT_EQ((*c)[2].kind, IpxeCommand::Kind::kBoot);

  auto exit = ParseIpxeScript("#!ipxe\nexit\n", "http://h/ipxe");
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->at(0).kind, IpxeCommand::Kind::kExit);
  auto chain = ParseIpxeScript("#!ipxe\nchain ipxe?mac=1\n", "http://h/boot.ipxe");
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->at(0).kind, IpxeCommand::Kind::kChain);
  EXPECT_EQ(chain->at(0).url, "http://h/ipxe?mac=1");
}

// A non-iPXE answer or a kernel line without URL names the URL and line.
TEST(IpxeScript, BadScriptsNameUrlAndLine) {
  auto html = ParseIpxeScript("<html>oops</html>\n", "http://h/ipxe?mac=1");
  ASSERT_FALSE(html);
  EXPECT_EQ(html.error().message,
            "http://h/ipxe?mac=1: not an iPXE script (want first line \"#!ipxe\", got "
            "\"<html>oops</html>\")");
  auto empty = ParseIpxeScript("", "http://h/ipxe");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("http://h/ipxe: empty answer"), std::string::npos);
  auto nourl = ParseIpxeScript("#!ipxe\nkernel\n", "http://h/ipxe");
  ASSERT_FALSE(nourl);
  EXPECT_EQ(nourl.error().message, "http://h/ipxe: line 2: \"kernel\" without a URL");
}

// A stand-in kernel names its version; anything else is refused with the URL.
TEST(SimKernel, VersionFromFirstLine) {
  auto v = SimKernelVersion(SimKernel("v1.12.0"), "http://h/k");
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(*v, "v1.12.0");
  auto bad = SimKernelVersion(std::string("MZ\x90\x00real kernel", 15), "http://h/assets/vmlinuz");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(bad.error().message,
            "http://h/assets/vmlinuz: not a simulated Talos kernel (want first line "
            "\"IRONBOOT-SIM-KERNEL talos=vX.Y.Z\", got \"MZ??real kernel\")");
  EXPECT_FALSE(SimKernelVersion("IRONBOOT-SIM-KERNEL talos=1.12\n", "u"));
}

// Bootstrap makes the first member leader; a second is refused; members
// join; the leader moves off an unhealthy member; no leader without quorum.
TEST(SimEtcd, MembershipLeaderAndQuorum) {
  SimEtcd etcd;
  EXPECT_FALSE(etcd.bootstrapped());
  ASSERT_TRUE(etcd.Bootstrap("cp1", "10.0.0.1"));
  auto again = etcd.Bootstrap("cp2", "10.0.0.2");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "etcd is already bootstrapped (by cp1)");
  etcd.Join("cp2", "10.0.0.2");
  etcd.Join("cp3", "10.0.0.3");
  etcd.Join("cp2", "10.0.0.2");
  ASSERT_EQ(etcd.members().size(), 3u);
  EXPECT_EQ(etcd.leader(), SimEtcd::MemberId("cp1"));
  std::set<std::string> healthy = {"cp1", "cp2", "cp3"};
  auto is = [&](const std::string& n) { return healthy.contains(n); };
  etcd.Elect(is);
  EXPECT_EQ(etcd.leader(), SimEtcd::MemberId("cp1"));
  uint64_t term = etcd.term();
  healthy.erase("cp1");
  etcd.Elect(is);
  EXPECT_EQ(etcd.leader(), SimEtcd::MemberId("cp2"));
  EXPECT_EQ(etcd.term(), term + 1);
  healthy.erase("cp2");
  etcd.Elect(is);
  EXPECT_EQ(etcd.leader(), 0u);  // 1 of 3: no quorum
  healthy.insert("cp1");
  etcd.Elect(is);
  EXPECT_EQ(etcd.leader(), SimEtcd::MemberId("cp1"));
}

}  // namespace
}  // namespace ironboot::fleet
