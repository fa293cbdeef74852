#pragma once
// tests/testutil: the git CLI for tests that build real repositories.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ironboot::testutil {

// An environment with no user or system git config and a fixed identity.
const std::map<std::string, std::string>& GitEnv();

// Runs `git <args>` in `cwd` with GitEnv(); a non-zero exit is a test failure
// naming the command and its output. Returns the output without trailing newlines.
std::string Git(const std::filesystem::path& cwd, std::vector<std::string> args);

}  // namespace ironboot::testutil
