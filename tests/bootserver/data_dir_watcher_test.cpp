// DataDirWatcher: the served store follows the data dir (files added, changed,
// removed, directories created late), and a failed load keeps the last store.

#include "bootserver/data_dir_watcher.h"

#include <gtest/gtest.h>

#include "tests/testutil/testutil.h"

namespace ironboot::bootserver {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testutil::TempDir;
using testutil::WaitFor;
using testutil::WriteFile;

class DataDirWatcherTest : public ::testing::Test {
 protected:
  // The group id selected for `mac` in the served store, "" for none.
  std::string Selected(const std::string& mac) {
    StorePtr store = holder_.Get();
    if (!store) {
      return "<no store>";
    }
    const Group* g = store->Select({{"mac", mac}});
    return g ? g->id : "";
  }

  TempDir dir_;
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  HttpMetrics metrics_{registry_};
  StoreHolder holder_;
};

// Groups added, changed and removed while watching are served within a deadline.
TEST_F(DataDirWatcherTest, FollowsFileChanges) {
  WriteFile(dir_ / "groups/a.json",
            R"({"id":"a","profile":"p","selector":{"mac":"52:54:00:00:00:01"}})");
  WriteFile(dir_ / "profiles/p.json", R"({"id":"p"})");
  DataDirWatcher watcher(dir_.path(), &holder_, &metrics_);
  ASSERT_TRUE(watcher.Reload());
  watcher.Start();
  EXPECT_EQ(Selected("52:54:00:00:00:01"), "a");

  WriteFile(dir_ / "groups/b.json",
            R"({"id":"b","profile":"p","selector":{"mac":"52:54:00:00:00:02"}})");
  EXPECT_TRUE(WaitFor([&] { return Selected("52:54:00:00:00:02") == "b"; }, 5s));

  WriteFile(dir_ / "groups/a.json",
            R"({"id":"a2","profile":"p","selector":{"mac":"52:54:00:00:00:01"}})");
  EXPECT_TRUE(WaitFor([&] { return Selected("52:54:00:00:00:01") == "a2"; }, 5s));

  fs::remove(dir_ / "groups/b.json");
  EXPECT_TRUE(WaitFor([&] { return Selected("52:54:00:00:00:02").empty(); }, 5s));
  EXPECT_GE(watcher.generation(), 4u);
  watcher.Stop();
}

// groups/ and profiles/ created after the watcher started are picked up.
TEST_F(DataDirWatcherTest, DirectoriesCreatedLater) {
  DataDirWatcher watcher(dir_.path(), &holder_, &metrics_);
  ASSERT_TRUE(watcher.Reload());
  watcher.Start();
  EXPECT_EQ(Selected("52:54:00:00:00:01"), "");
  fs::create_directories(dir_ / "groups");
  fs::create_directories(dir_ / "profiles");
  // Give the watcher time to notice the directories and watch them (no file
  // in them yet), then write into them: the files must still be seen.
  ASSERT_TRUE(WaitFor([&] { return watcher.generation() >= 2; }, 5s));
  WriteFile(dir_ / "profiles/p.json", R"({"id":"p"})");
  WriteFile(dir_ / "groups/a.json",
            R"({"id":"a","profile":"p","selector":{"mac":"52:54:00:00:00:01"}})");
  EXPECT_TRUE(WaitFor([&] { return Selected("52:54:00:00:00:01") == "a"; }, 5s));
  watcher.Stop();
}

// A load that fails (the data dir is gone) keeps the previous store and is counted.
TEST_F(DataDirWatcherTest, FailedLoadKeepsPreviousStore) {
  WriteFile(dir_ / "data/groups/a.json",
            R"({"id":"a","profile":"p","selector":{"mac":"52:54:00:00:00:01"}})");
  DataDirWatcher watcher(dir_ / "data", &holder_, &metrics_);
  ASSERT_TRUE(watcher.Reload());
  fs::rename(dir_ / "data", dir_ / "gone");
  auto failed = watcher.Reload();
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find((dir_ / "data").string()), std::string::npos)
      << failed.error().message;
  EXPECT_EQ(Selected("52:54:00:00:00:01"), "a");
  EXPECT_EQ(watcher.generation(), 1u);
}

// Stop() returns promptly even while idle (no change for a long time).
TEST_F(DataDirWatcherTest, StopIsPrompt) {
  DataDirWatcher watcher(dir_.path(), &holder_, &metrics_);
  watcher.Start();
  auto start = std::chrono::steady_clock::now();
  watcher.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
}

}  // namespace
}  // namespace ironboot::bootserver
