#pragma once
// manifests/: raw Matchbox groups/*.json and profiles/*.json kept in a cluster
// repo (the migration path), parsed as Matchbox parses them, and the reverse:
// a group or profile as Matchbox JSON for `ironboot render --out`.

#include <expected>
#include <string>

#include "bootserver/model.h"
#include "manifests/diagnostics.h"

namespace ironboot::manifests {

// `path` is the repo path, for messages and Group::source.
std::expected<bootserver::Group, Diagnostic> ParseMatchboxGroup(const std::string& path,
                                                                const std::string& content);
std::expected<bootserver::Profile, Diagnostic> ParseMatchboxProfile(const std::string& path,
                                                                    const std::string& content);

// Matchbox's on-disk JSON (4-space indent, trailing newline; deterministic).
std::string GroupToJson(const bootserver::Group& group);
std::string ProfileToJson(const bootserver::Profile& profile);

}  // namespace ironboot::manifests
