// `ironboot machineconfig patch` end to end: the real binary, real files.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/talos/patch_compare.h"
#include "tests/testutil/testutil.h"

namespace ironboot::talos {
namespace {

using testing::Doc;
using ::testing::HasSubstr;
using testing::Scalar;

std::string Testdata(const std::string& rel) {
  return std::string(IRONBOOT_SHARED_DIR) + "/talos/testdata/configpatcher/testdata/" + rel;
}

// Talos's "apply" case through the CLI: @file patches in order, result on stdout.
TEST(MachineconfigCommand, PatchesFileToStdout) {
  auto r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "patch", Testdata("apply/config.yaml"),
                          "--patch", "@" + Testdata("apply/strategic1.yaml"), "--patch",
                          "@" + Testdata("apply/jsonpatch1.yaml"), "-p",
                          "@" + Testdata("apply/jsonpatch2.yaml"),
                          "--patch=@" + Testdata("apply/strategic2.yaml"), "--patch",
                          "@" + Testdata("apply/strategic3.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(testing::SemanticallyEqual(
      r.output, testing::ReadTestdata("configpatcher/testdata/apply/expected.yaml")));
  EXPECT_EQ(Scalar(Doc(r.output), "machine.network.hostname"), "foo");
}

// An inline patch and -o OUT: the file is written (mode 0600, it holds secrets), stdout empty.
TEST(MachineconfigCommand, InlinePatchAndOutputFile) {
  testutil::TempDir dir;
  auto r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "patch", Testdata("apply/config.yaml"),
                          "--patch", "machine:\n  network:\n    hostname: inline-host\n", "-o",
                          (dir / "out.yaml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "");
  std::string written = testutil::ReadFile(dir / "out.yaml");
  EXPECT_EQ(Scalar(Doc(written), "machine.network.hostname"), "inline-host");
  EXPECT_EQ(Scalar(Doc(written), "machine.network.interfaces.0.interface"), "eth0");
  struct stat st {};
  ASSERT_EQ(::stat((dir / "out.yaml").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A bad patch exits 1 with a message naming the patch file and line.
TEST(MachineconfigCommand, BadPatchNamesFile) {
  testutil::TempDir dir;
  testutil::WriteFile(dir / "bad.yaml", "machine:\n  network: [\n");
  auto r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "patch", Testdata("apply/config.yaml"),
                          "--patch", "@" + (dir / "bad.yaml").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr((dir / "bad.yaml").string() + ":"));
  EXPECT_THAT(r.output, HasSubstr("invalid YAML"));

  testutil::WriteFile(dir / "test.yaml",
                      "- op: test\n  path: /machine/network/hostname\n"
                      "  value: other\n");
  r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "patch", Testdata("apply/config.yaml"),
                     "--patch", "@" + (dir / "test.yaml").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr((dir / "test.yaml").string() + ":1: operation 1"));
  EXPECT_THAT(r.output, HasSubstr("test failed"));
}

// Missing files and flags are reported, exit 1.
TEST(MachineconfigCommand, UsageErrors) {
  auto r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "patch", Testdata("apply/config.yaml"),
                          "--patch", "@/nonexistent/p.yaml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("cannot read patch file /nonexistent/p.yaml"));

  r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "patch", "/nonexistent/config.yaml",
                     "--patch", "machine: {}"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("cannot read machine config /nonexistent/config.yaml"));

  r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "patch", Testdata("apply/config.yaml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("no --patch given"));

  r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "frob"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("unknown subcommand \"frob\""));

  r = testutil::Run({IRONBOOT_BINARY, "machineconfig", "patch", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("usage: ironboot machineconfig patch FILE"));
}

}  // namespace
}  // namespace ironboot::talos
