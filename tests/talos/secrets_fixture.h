#pragma once
// A generated secrets bundle shared by all tests of the binary (RSA-4096
// generation takes about a second; do it once).

#include <gtest/gtest.h>

#include "common/clock.h"
#include "talos/secrets_bundle.h"

namespace ironboot::talos::testing {

inline const SecretsBundle& GeneratedBundle() {
  static const SecretsBundle bundle = [] {
    SystemClock clock;
    auto b = GenerateSecrets(clock);
    EXPECT_TRUE(b.has_value()) << (b ? "" : b.error().message);
    return b ? *b : SecretsBundle{};
  }();
  return bundle;
}

inline std::string TalosTestdata(const std::string& rel) {
  return std::string(IRONBOOT_SHARED_DIR) + "/talos/testdata/" + rel;
}

}  // namespace ironboot::talos::testing
