#pragma once
// bootserver/: keeps the served store in step with a Matchbox data dir. Loads
// it, publishes a new Store in one swap, and reloads when files change
// (inotify; polling once a second where inotify is unavailable). A load that
// fails keeps the previous store serving.

#include <atomic>
#include <filesystem>
#include <memory>
#include <thread>

#include "bootserver/metrics.h"
#include "bootserver/store_holder.h"
#include "common/error.h"

namespace ironboot::bootserver {

class DataDirWatcher {
 public:
  // `holder` and `metrics` must outlive the watcher.
  DataDirWatcher(std::filesystem::path data_path, StoreHolder* holder, HttpMetrics* metrics);
  ~DataDirWatcher();

  // Loads and publishes now. Problems in single files are logged and served
  // around; an error means the data dir itself could not be read (the
  // previous store, if any, keeps serving).
  Result<void> Reload();

  // Starts watching in a background thread. Stop() (or the destructor) joins it.
  void Start();
  void Stop();

  // Reloads that ended in a publish (for tests waiting on a change).
  uint64_t generation() const { return generation_.load(); }

 private:
  void Run(int inotify_fd);  // takes ownership of inotify_fd (-1: poll instead)

  // Constant after construction.
  const std::filesystem::path data_path_;
  StoreHolder* const holder_;
  HttpMetrics* const metrics_;

  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> generation_{0};
  int wake_fd_ = -1;  // eventfd to interrupt poll() on Stop
  std::thread thread_;
};

}  // namespace ironboot::bootserver
