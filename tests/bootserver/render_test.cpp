// Rendering, byte for byte as Matchbox v0.11 answers: the chainloader, iPXE
// scripts, GRUB configs (with Matchbox's two-space quirk), metadata env files
// and generic templates.

#include "bootserver/render.h"

#include <gtest/gtest.h>

namespace ironboot::bootserver {
namespace {

using nlohmann::json;

Profile TalosProfile() {
  Profile p;
  p.id = "cp";
  p.kernel = "/assets/vmlinuz";
  p.initrd = {"/assets/initramfs.xz"};
  p.args = {"initrd=initramfs.xz", "talos.platform=metal",
            "talos.config=http://10.0.112.2/config?mac=${mac:hexhyp}"};
  return p;
}

// /boot.ipxe chainloads /ipxe with every label iPXE knows, exactly as Matchbox.
TEST(RenderTest, ChainloadScriptIsMatchboxs) {
  EXPECT_EQ(kChainloadScript,
            "#!ipxe\n"
            "chain ipxe?uuid=${uuid}&mac=${mac:hexhyp}&domain=${domain}&hostname=${hostname}"
            "&serial=${serial}&arch=${buildarch:uristring}\n");
}

// /ipxe: kernel line with args (iPXE "${...}" left alone), one initrd line each, boot.
TEST(RenderTest, IpxeScriptExact) {
  EXPECT_EQ(IpxeScript(TalosProfile()),
            "#!ipxe\n"
            "kernel /assets/vmlinuz initrd=initramfs.xz talos.platform=metal "
            "talos.config=http://10.0.112.2/config?mac=${mac:hexhyp}\n"
            "initrd /assets/initramfs.xz\n"
            "boot\n");
  Profile p;
  p.kernel = "K";
  p.initrd = {"I1", "I2"};
  EXPECT_EQ(IpxeScript(p), "#!ipxe\nkernel K\ninitrd I1\ninitrd I2\nboot\n");
  p.initrd.clear();
  EXPECT_EQ(IpxeScript(p), "#!ipxe\nkernel K\nboot\n");
}

// /grub: EFI then BIOS entries, paths quoted, and two spaces after
// initrdefi/initrd as Matchbox's template produces.
TEST(RenderTest, GrubConfigExactWithTwoSpaceQuirk) {
  Profile p;
  p.kernel = "K";
  p.args = {"a", "b"};
  p.initrd = {"I"};
  EXPECT_EQ(GrubConfig(p),
            "default=0\nfallback=1\ntimeout=1\n"
            "menuentry \"CoreOS (EFI)\" {\n"
            "echo \"Loading kernel\"\n"
            "linuxefi \"K\" a b\n"
            "echo \"Loading initrd\"\n"
            "initrdefi  \"I\"\n"
            "}\n"
            "menuentry \"CoreOS (BIOS)\" {\n"
            "echo \"Loading kernel\"\n"
            "linux \"K\" a b\n"
            "echo \"Loading initrd\"\n"
            "initrd  \"I\"\n"
            "}\n");
  p.args.clear();
  p.initrd = {"I1", "I2"};
  std::string two = GrubConfig(p);
  EXPECT_NE(two.find("linuxefi \"K\"\n"), std::string::npos) << two;
  EXPECT_NE(two.find("initrdefi  \"I1\" \"I2\"\n"), std::string::npos) << two;
  EXPECT_NE(two.find("initrd  \"I1\" \"I2\"\n"), std::string::npos) << two;
}

// Variables: metadata, then selectors (keys lowercased, overriding metadata),
// then request.query (labels) and request.raw_query.
TEST(RenderTest, CollectVariablesMergesMetadataSelectorsAndRequest) {
  Group g;
  g.metadata = json{{"os", "from-metadata"}, {"pod", "10.2.0.0/16"}};
  g.selector = {{"OS", "installed"}, {"mac", "52:54:00:ab:cd:ef"}};
  Labels labels = {{"mac", "52:54:00:ab:cd:ef"}, {"extra", "1"}};
  json v = CollectVariables(g, labels, "mac=52-54-00-AB-CD-EF&extra=1");
  EXPECT_EQ(v["os"], "installed");
  EXPECT_EQ(v["pod"], "10.2.0.0/16");
  EXPECT_EQ(v["mac"], "52:54:00:ab:cd:ef");
  EXPECT_EQ(v["request"]["query"]["extra"], "1");
  EXPECT_EQ(v["request"]["query"]["mac"], "52:54:00:ab:cd:ef");
  EXPECT_EQ(v["request"]["raw_query"], "mac=52-54-00-AB-CD-EF&extra=1");
  EXPECT_FALSE(v.contains("OS"));
}

// /metadata: KEY=value lines, nested keys joined with "_", uppercased,
// numbers and booleans Go-formatted, lists and nulls skipped, sorted.
TEST(RenderTest, MetadataEnvExact) {
  Group g;
  g.metadata = json::parse(R"({"pod_network":"10.2.0.0/16","k8s":{"version":"1.31","ha":true},
                              "count":3,"ratio":2.5,"list":[1,2],"nothing":null})");
  g.selector = {{"mac", "52:54:00:ab:cd:ef"}};
  std::string raw = "mac=52-54-00-AB-CD-EF&os=installed";
  json v = CollectVariables(g, {{"mac", "52:54:00:ab:cd:ef"}, {"os", "installed"}}, raw);
  EXPECT_EQ(MetadataEnv(v),
            "COUNT=3\n"
            "K8S_HA=true\n"
            "K8S_VERSION=1.31\n"
            "MAC=52:54:00:ab:cd:ef\n"
            "POD_NETWORK=10.2.0.0/16\n"
            "RATIO=2.5\n"
            "REQUEST_QUERY_MAC=52:54:00:ab:cd:ef\n"
            "REQUEST_QUERY_OS=installed\n"
            "REQUEST_RAW_QUERY=mac=52-54-00-AB-CD-EF&os=installed\n");
}

// Field lookups, nested lookups, spaces inside braces, numbers and booleans.
TEST(RenderTemplateTest, LookupsRender) {
  json v = json::parse(R"({"name":"cp1","n":3,"f":1.5,"on":false,
                          "request":{"query":{"mac":"52:54:00:ab:cd:ef"},"raw_query":"mac=x"}})");
  auto out = RenderTemplate(
      "host={{.name}} mac={{ .request.query.mac }} n={{.n}} f={{.f}} on={{.on}} "
      "raw={{.request.raw_query}}\n",
      v);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, "host=cp1 mac=52:54:00:ab:cd:ef n=3 f=1.5 on=false raw=mac=x\n");
  auto plain = RenderTemplate("no actions at all\n", v);
  ASSERT_TRUE(plain);
  EXPECT_EQ(*plain, "no actions at all\n");
}

// "{{-" trims whitespace before the action, "-}}" after it, as Go templates.
TEST(RenderTemplateTest, TrimMarkers) {
  json v = {{"x", "X"}};
  auto out = RenderTemplate("a  \n {{- .x -}} \n  b|{{.x -}}   c|  {{- .x}}", v);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(*out, "aXb|Xc|X");
}

// A missing key (top-level or nested) is an error naming the key: /generic answers 404.
TEST(RenderTemplateTest, MissingKeyIsNotFound) {
  json v = json::parse(R"({"request":{"query":{}}})");
  auto top = RenderTemplate("{{.nope}}", v);
  ASSERT_FALSE(top);
  EXPECT_EQ(top.error().code, ErrorCode::kNotFound);
  EXPECT_NE(top.error().message.find("\"nope\""), std::string::npos) << top.error().message;
  auto nested = RenderTemplate("{{.request.query.mac}}", v);
  ASSERT_FALSE(nested);
  EXPECT_EQ(nested.error().code, ErrorCode::kNotFound);
  EXPECT_NE(nested.error().message.find(".request.query.mac"), std::string::npos)
      << nested.error().message;
  auto through_string = RenderTemplate("{{.request.query.mac.x}}",
                                       json::parse(R"({"request":{"query":{"mac":"m"}}})"));
  EXPECT_FALSE(through_string);
}

// Actions other than field lookups, and an unclosed "{{", are errors.
TEST(RenderTemplateTest, UnsupportedActionsAreErrors) {
  json v = {{"x", "X"}};
  auto cond = RenderTemplate("{{if .x}}y{{end}}", v);
  ASSERT_FALSE(cond);
  EXPECT_EQ(cond.error().code, ErrorCode::kInvalid);
  EXPECT_NE(cond.error().message.find("unsupported template action"), std::string::npos)
      << cond.error().message;
  auto unclosed = RenderTemplate("abc {{.x", v);
  ASSERT_FALSE(unclosed);
  EXPECT_NE(unclosed.error().message.find("unclosed"), std::string::npos)
      << unclosed.error().message;
}

}  // namespace
}  // namespace ironboot::bootserver
