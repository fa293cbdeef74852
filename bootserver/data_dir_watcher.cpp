#include "bootserver/data_dir_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <map>

#include "common/internal_errors.h"
#include "common/log.h"

namespace ironboot::bootserver {
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kWatchMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ATTRIB;
constexpr const char* kSubdirs[] = {"groups", "profiles", "generic"};

// Size and mtime of every file the store reads: the polling fallback compares these.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> Fingerprint(const fs::path& root) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> out;
  std::error_code ec;
  for (const char* sub : kSubdirs) {
    for (fs::directory_iterator it(root / sub, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code fec;
      out[it->path().string()] = {it->file_size(fec), it->last_write_time(fec)};
    }
  }
  return out;
}

// Watches the data dir and its subdirectories (those that exist now).
void AddWatches(int ifd, const fs::path& root) {
  if (ifd < 0) {
    return;
  }
  inotify_add_watch(ifd, root.c_str(), kWatchMask);
  for (const char* sub : kSubdirs) {
    inotify_add_watch(ifd, (root / sub).c_str(), kWatchMask);
  }
}

}  // namespace

DataDirWatcher::DataDirWatcher(fs::path data_path, StoreHolder* holder, HttpMetrics* metrics)
    : data_path_(std::move(data_path)), holder_(holder), metrics_(metrics) {}

DataDirWatcher::~DataDirWatcher() {
  Stop();
}

Result<void> DataDirWatcher::Reload() {
  static auto log = Logger("store");
  auto start = std::chrono::steady_clock::now();
  auto load = LoadDataDir(data_path_);
  if (!load) {
    metrics_->CountReload(false);
    log->error("reload failed, still serving the previous store: {}", load.error().message);
    return std::unexpected(load.error());
  }
  StorePtr store = Store::Build(std::move(load->content), std::move(load->problems));
  for (const auto& p : store->problems()) {
    log->warn("file={} problem=\"{}\"", p.file, p.reason);
  }
  metrics_->SetStore(store->group_count(), store->profile_count(), store->problems().size());
  metrics_->CountReload(true);
  holder_->Publish(store);
  generation_.fetch_add(1);
  log->info(
      "loaded data_path={} groups={} profiles={} problems={} duration_ms={:.1f}",
      data_path_.string(), store->group_count(), store->profile_count(), store->problems().size(),
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  return {};
}

void DataDirWatcher::Start() {
  stop_ = false;
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  // Watches are set up before Start returns, so a change made right after it
  // (or a directory created then) is never missed.
  int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ifd < 0) {
    Logger("store")->warn("inotify unavailable ({}); polling {} every second", strerror(errno),
                          data_path_.string());
  }
  AddWatches(ifd, data_path_);
  thread_ = std::thread([this, ifd] { Run(ifd); });
}

void DataDirWatcher::Stop() {
  stop_ = true;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
  if (thread_.joinable()) {
    thread_.join();
  }
  if (wake_fd_ >= 0) {
    close(wake_fd_);
    wake_fd_ = -1;
  }
}

void DataDirWatcher::Run(int ifd) {
  auto fingerprint = ifd < 0 ? Fingerprint(data_path_) : decltype(Fingerprint(data_path_)){};
  char buf[16 * 1024];
  while (!stop_) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {ifd, POLLIN, 0}};
    int n = poll(fds, ifd < 0 ? 1 : 2, 1000);
    if (stop_) {
      break;
    }
    bool changed = false;
    if (ifd < 0) {
      auto now = Fingerprint(data_path_);
      changed = now != fingerprint;
      fingerprint = std::move(now);
    } else if (n > 0 && (fds[1].revents & POLLIN)) {
      // Debounce: keep draining events until 100 ms pass without one (1 s at most),
      // so a burst of writes (an rsync, a git checkout) causes one reload.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      do {
        while (read(ifd, buf, sizeof(buf)) > 0) {
        }
        changed = true;
        pollfd again{ifd, POLLIN, 0};
        if (poll(&again, 1, 100) <= 0) {
          break;
        }
      } while (std::chrono::steady_clock::now() < deadline && !stop_);
    }
    if (changed && !stop_) {
      // Watch first, then load: a subdirectory created (or replaced) since
      // the last load is watched before it is read, so no write in it is missed.
      GuardInternal("store_watch", [&] {
        AddWatches(ifd, data_path_);
        (void)Reload();
      });
    }
  }
  if (ifd >= 0) {
    close(ifd);
  }
}

}  // namespace ironboot::bootserver
