#pragma once
// bootserver/: the one place the served Store lives. Publishing swaps the
// whole store atomically; readers take a reference and keep using it even if
// a newer store is published meanwhile. Thread-safe.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "bootserver/store.h"

namespace ironboot::bootserver {

class StoreHolder {
 public:
  // The served store, or nullptr before the first publish.
  StorePtr Get() const { return store_.load(std::memory_order_acquire); }
  void Publish(StorePtr store) { store_.store(std::move(store), std::memory_order_release); }

  // Why nothing is served yet (for /readyz); empty once a store is published.
  void SetNotReadyReason(std::string reason) {
    std::lock_guard lock(mu_);
    not_ready_reason_ = std::move(reason);
  }
  std::string NotReadyReason() const {
    std::lock_guard lock(mu_);
    return not_ready_reason_;
  }

 private:
  std::atomic<StorePtr> store_;
  mutable std::mutex mu_;
  std::string not_ready_reason_ = "no store loaded yet";  // guarded by mu_
};

}  // namespace ironboot::bootserver
