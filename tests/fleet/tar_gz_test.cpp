#include "fleet/tar_gz.h"

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::fleet {
namespace {

// The archive is one a real `tar -xz` extracts to the same bytes.
TEST(TarGz, TarExtractsTheFile) {
  testutil::TempDir dir;
  std::string content(3000, 'k');
  content += "\nend\n";
  auto archive = SingleFileTarGz("kubeconfig", content, 1700000000);
  ASSERT_TRUE(archive) << archive.error().message;
  testutil::WriteFile(dir / "k.tar.gz", *archive);
  auto r = testutil::Run({"tar", "-xzf", (dir / "k.tar.gz").string(), "-C", dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(testutil::ReadFile(dir / "kubeconfig"), content);
  auto list = testutil::Run({"tar", "-tzf", (dir / "k.tar.gz").string()});
  EXPECT_EQ(list.output, "kubeconfig\n");
}

// A name longer than ustar allows is refused with the name.
TEST(TarGz, LongNameRefused) {
  auto r = SingleFileTarGz(std::string(120, 'n'), "x", 0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("must be 1-99 bytes"), std::string::npos);
}

}  // namespace
}  // namespace ironboot::fleet
