#pragma once
// bootserver/: the Store, an immutable, indexed snapshot of everything the
// boot server serves. Built once per revision (a data dir load or a GitOps
// publish) and swapped in whole, so a request never sees a half-loaded store.
// Selection costs O(groups matching the request's MAC + groups without a mac
// selector), not O(all groups).

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bootserver/labels.h"
#include "bootserver/model.h"
#include "common/error.h"

namespace ironboot::bootserver {

// A file (or entry) the store refused or found inconsistent. `file` is
// relative to the data dir ("groups/cp1.json"); `reason` says what is wrong
// and what was expected.
struct StoreProblem {
  std::string file;
  std::string reason;
  std::string ToString() const { return file + ": " + reason; }
};

class Store {
 public:
  // Indexes `content`. `problems` are those found while loading it (kept and
  // reported by problems()). Entries that cannot be served consistently are
  // left out or flagged and added to problems(): a group whose selector
  // duplicates an earlier one's (left out; the earlier file name wins), a
  // group naming a missing profile (kept: it answers 404, as in Matchbox), a
  // profile id defined twice. Never fails.
  static std::shared_ptr<const Store> Build(StoreContent content,
                                            std::vector<StoreProblem> problems = {});

  // The group Matchbox would select: most selectors first, ties broken by the
  // larger sorted "k=v,k=v" selector string; the first whose every selector
  // equals the request's label wins. nullptr when none matches.
  const Group* Select(const Labels& labels) const;

  const Profile* FindProfile(std::string_view id) const;
  // The profile `group` names, or nullptr; O(1). `group` must come from Select().
  const Profile* ProfileOf(const Group* group) const {
    return group_profile_[static_cast<size_t>(group - content_.groups.data())];
  }
  // The iPXE script of `profile`, rendered once when the store was built. O(1).
  // `profile` must come from this store.
  const std::string& IpxeScriptOf(const Profile* profile) const {
    return ipxe_scripts_[static_cast<size_t>(profile - content_.profiles.data())];
  }
  const std::string* FindGenericTemplate(std::string_view id) const;
  // `mac` normalised (lowercase, colons).
  const std::string* FindMachineConfig(std::string_view mac) const;
  // `path` relative to /assets/, e.g. "talos/v1.11.3/amd64/vmlinuz".
  const std::filesystem::path* FindExtraAsset(std::string_view path) const;

  const StoreContent& content() const { return content_; }
  const std::vector<StoreProblem>& problems() const { return problems_; }
  size_t group_count() const { return ordered_.size(); }
  size_t profile_count() const { return profiles_.size(); }

 private:
  Store() = default;

  // Constant after Build.
  StoreContent content_;
  std::vector<StoreProblem> problems_;
  std::vector<const Group*> ordered_;  // selection order
  // Positions in ordered_ of groups with a "mac" selector, by that MAC.
  std::unordered_map<std::string, std::vector<uint32_t>> by_mac_;
  // Positions in ordered_ of groups without a "mac" selector (incl. the default group).
  std::vector<uint32_t> without_mac_;
  std::unordered_map<std::string, const Profile*> profiles_;
  std::vector<const Profile*> group_profile_;  // by index in content_.groups
  std::vector<std::string> ipxe_scripts_;      // by index in content_.profiles
};
using StorePtr = std::shared_ptr<const Store>;

// Reads a Matchbox data dir: groups/*.json, profiles/*.json (found by file
// name, as Matchbox does), generic/*. Files that do not parse or have wrong
// field types are skipped and reported; everything else loads. Fails only
// when `data_path` itself cannot be read.
struct DataDirLoad {
  StoreContent content;
  std::vector<StoreProblem> problems;
};
Result<DataDirLoad> LoadDataDir(const std::filesystem::path& data_path);

// Parses one group or profile JSON document. `source` names it in errors.
Result<Group> ParseGroup(std::string_view json_text, const std::string& source);
Result<Profile> ParseProfile(std::string_view json_text, const std::string& source);

// The canonical "k=v,k=v" string of a selector (keys sorted).
std::string SelectorString(const std::map<std::string, std::string>& selector);

}  // namespace ironboot::bootserver
