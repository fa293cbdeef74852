#include "bootserver/store.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "bootserver/mac.h"
#include "bootserver/render.h"

namespace ironboot::bootserver {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool IsMacKey(const std::string& key) {
  std::string lower = key;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower == "mac";
}

// nlohmann's messages start with "[json.exception.parse_error.101] ".
std::string CleanJsonError(const std::string& what) {
  auto pos = what.find("] ");
  return pos == std::string::npos ? what : what.substr(pos + 2);
}

Result<json> ParseObject(std::string_view text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    return Fail(ErrorCode::kInvalid, source + ": invalid JSON: " + CleanJsonError(e.what()));
  }
  if (!doc.is_object()) {
    return Fail(ErrorCode::kInvalid,
                source + ": want a JSON object, got " + std::string(doc.type_name()));
  }
  return doc;
}

// Reads an optional string field; wrong type is an error naming the field.
Result<std::string> StringField(const json& doc, const char* field, const std::string& source) {
  auto it = doc.find(field);
  if (it == doc.end() || it->is_null()) {
    return std::string();
  }
  if (!it->is_string()) {
    return Fail(ErrorCode::kInvalid, source + ": field \"" + field + "\": want a string, got " +
                                         std::string(it->type_name()));
  }
  return it->get<std::string>();
}

Result<std::vector<std::string>> StringListField(const json& doc, const char* field,
                                                 const std::string& source,
                                                 const std::string& prefix) {
  std::vector<std::string> out;
  auto it = doc.find(field);
  if (it == doc.end() || it->is_null()) {
    return out;
  }
  if (!it->is_array()) {
    return Fail(ErrorCode::kInvalid, source + ": field \"" + prefix + field +
                                         "\": want a list of strings, got " +
                                         std::string(it->type_name()));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    if (!item.is_string()) {
      return Fail(ErrorCode::kInvalid, source + ": field \"" + prefix + field + "[" +
                                           std::to_string(i) + "]\": want a string, got " +
                                           std::string(item.type_name()));
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::string ReadWholeFile(const fs::path& path, std::error_code& ec) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ec = std::make_error_code(std::errc::io_error);
    return {};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Regular files directly in `dir`, sorted by name; missing dir -> empty.
std::vector<fs::path> ListFiles(const fs::path& dir, const char* extension) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) {
      continue;
    }
    if (extension != nullptr && it->path().extension() != extension) {
      continue;
    }
    out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::string SelectorString(const std::map<std::string, std::string>& selector) {
  std::string out;
  for (const auto& [k, v] : selector) {
    if (!out.empty()) {
      out += ',';
    }
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

Result<Group> ParseGroup(std::string_view text, const std::string& source) {
  auto doc = ParseObject(text, source);
  if (!doc) {
    return std::unexpected(doc.error());
  }
  Group g;
  g.source = source;
  for (auto [field, target] : {std::pair{"id", &g.id}, std::pair{"name", &g.name},
                               std::pair{"profile", &g.profile}}) {
    auto value = StringField(*doc, field, source);
    if (!value) {
      return std::unexpected(value.error());
    }
    *target = std::move(*value);
  }
  if (auto it = doc->find("selector"); it != doc->end() && !it->is_null()) {
    if (!it->is_object()) {
      return Fail(ErrorCode::kInvalid, source + ": field \"selector\": want an object of strings, got " +
                                           std::string(it->type_name()));
    }
    for (const auto& [key, value] : it->items()) {
      if (!value.is_string()) {
        return Fail(ErrorCode::kInvalid, source + ": field \"selector." + key +
                                             "\": want a string, got " +
                                             std::string(value.type_name()));
      }
      std::string v = value.get<std::string>();
      if (IsMacKey(key)) {
        auto mac = NormalizeMac(v);
        if (!mac) {
          return Fail(ErrorCode::kInvalid, source + ": field \"selector." + key + "\": \"" + v +
                                               "\" is not a MAC address (want 6 octets like "
                                               "52:54:00:ab:cd:ef)");
        }
        v = *mac;
      }
      g.selector.emplace(key, std::move(v));
    }
  }
  if (auto it = doc->find("metadata"); it != doc->end() && !it->is_null()) {
    if (!it->is_object()) {
      return Fail(ErrorCode::kInvalid, source + ": field \"metadata\": want an object, got " +
                                           std::string(it->type_name()));
    }
    g.metadata = *it;
  }
  return g;
}

Result<Profile> ParseProfile(std::string_view text, const std::string& source) {
  auto doc = ParseObject(text, source);
  if (!doc) {
    return std::unexpected(doc.error());
  }
  Profile p;
  p.source = source;
  for (auto [field, target] : {std::pair{"id", &p.id}, std::pair{"name", &p.name},
                               std::pair{"generic_id", &p.generic_id}}) {
    auto value = StringField(*doc, field, source);
    if (!value) {
      return std::unexpected(value.error());
    }
    *target = std::move(*value);
  }
  if (auto it = doc->find("boot"); it != doc->end() && !it->is_null()) {
    if (!it->is_object()) {
      return Fail(ErrorCode::kInvalid, source + ": field \"boot\": want an object, got " +
                                           std::string(it->type_name()));
    }
    auto kernel = StringField(*it, "kernel", source);
    if (!kernel) {
      return std::unexpected(Error{ErrorCode::kInvalid,
                                   source + ": field \"boot.kernel\": want a string"});
    }
    p.kernel = std::move(*kernel);
    auto initrd = StringListField(*it, "initrd", source, "boot.");
    if (!initrd) {
      return std::unexpected(initrd.error());
    }
    p.initrd = std::move(*initrd);
    auto args = StringListField(*it, "args", source, "boot.");
    if (!args) {
      return std::unexpected(args.error());
    }
    p.args = std::move(*args);
  }
  return p;
}

std::shared_ptr<const Store> Store::Build(StoreContent content,
                                          std::vector<StoreProblem> problems) {
  std::shared_ptr<Store> store(new Store());
  std::vector<StoreProblem> found = std::move(problems);
  store->content_ = std::move(content);
  auto& c = store->content_;

  for (const auto& p : c.profiles) {
    if (!store->profiles_.emplace(p.id, &p).second) {
      found.push_back({p.source, "profile id \"" + p.id + "\" is defined twice; keeping the first"});
    }
  }

  // Valid groups in selection order. Sort a copy of pointers; stable by source
  // so that duplicates resolve to the first file name.
  std::vector<const Group*> groups;
  for (auto& g : c.groups) {
    groups.push_back(&g);
  }
  std::vector<std::string> keys(c.groups.size());
  for (size_t i = 0; i < c.groups.size(); ++i) {
    keys[i] = SelectorString(c.groups[i].selector);
  }
  auto key_of = [&](const Group* g) -> const std::string& {
    return keys[static_cast<size_t>(g - c.groups.data())];
  };
  std::stable_sort(groups.begin(), groups.end(), [&](const Group* a, const Group* b) {
    if (a->selector.size() != b->selector.size()) {
      return a->selector.size() > b->selector.size();
    }
    if (key_of(a) != key_of(b)) {
      return key_of(a) > key_of(b);
    }
    return a->source < b->source;
  });
  for (size_t i = 0; i < groups.size(); ++i) {
    const Group* g = groups[i];
    if (i > 0 && groups[i - 1]->selector.size() == g->selector.size() &&
        key_of(groups[i - 1]) == key_of(g)) {
      // Keep the pointer chain intact: compare against the last kept group.
      const Group* kept = store->ordered_.empty() ? nullptr : store->ordered_.back();
      found.push_back({g->source, "group \"" + g->id + "\" has the same selector {" + key_of(g) +
                                      "} as " + (kept ? kept->source : std::string("another group")) +
                                      "; it is ignored (the first file name wins)"});
      continue;
    }
    if (store->profiles_.count(g->profile) == 0) {
      found.push_back({g->source, "group \"" + g->id + "\" names profile \"" + g->profile +
                                      "\", which does not exist; matching machines get 404"});
    }
    store->ordered_.push_back(g);
  }
  store->group_profile_.resize(c.groups.size(), nullptr);
  for (size_t i = 0; i < c.groups.size(); ++i) {
    if (auto it = store->profiles_.find(c.groups[i].profile); it != store->profiles_.end()) {
      store->group_profile_[i] = it->second;
    }
  }
  store->ipxe_scripts_.reserve(c.profiles.size());
  for (const auto& p : c.profiles) {
    store->ipxe_scripts_.push_back(IpxeScript(p));
  }
  for (uint32_t pos = 0; pos < store->ordered_.size(); ++pos) {
    const Group* g = store->ordered_[pos];
    auto mac = g->selector.find("mac");
    if (mac != g->selector.end()) {
      store->by_mac_[mac->second].push_back(pos);
    } else {
      store->without_mac_.push_back(pos);
    }
  }
  store->problems_ = std::move(found);
  return store;
}

const Group* Store::Select(const Labels& labels) const {
  static const std::vector<uint32_t> kEmpty;
  const std::vector<uint32_t>* with_mac = &kEmpty;
  if (auto mac = labels.find("mac"); mac != labels.end()) {
    if (auto it = by_mac_.find(mac->second); it != by_mac_.end()) {
      with_mac = &it->second;
    }
  }
  auto matches = [&](const Group* g) {
    for (const auto& [k, v] : g->selector) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) {
        return false;
      }
    }
    return true;
  };
  // Merge the two position lists (both ascending) and return the first match.
  size_t i = 0;
  size_t j = 0;
  while (i < with_mac->size() || j < without_mac_.size()) {
    uint32_t pos;
    if (j >= without_mac_.size() || (i < with_mac->size() && (*with_mac)[i] < without_mac_[j])) {
      pos = (*with_mac)[i++];
    } else {
      pos = without_mac_[j++];
    }
    if (matches(ordered_[pos])) {
      return ordered_[pos];
    }
  }
  return nullptr;
}

const Profile* Store::FindProfile(std::string_view id) const {
  auto it = profiles_.find(std::string(id));
  return it == profiles_.end() ? nullptr : it->second;
}

const std::string* Store::FindGenericTemplate(std::string_view id) const {
  auto it = content_.generic_templates.find(std::string(id));
  return it == content_.generic_templates.end() ? nullptr : &it->second;
}

const std::string* Store::FindMachineConfig(std::string_view mac) const {
  auto it = content_.machine_configs.find(std::string(mac));
  return it == content_.machine_configs.end() ? nullptr : &it->second;
}

const fs::path* Store::FindExtraAsset(std::string_view path) const {
  auto it = content_.extra_assets.find(std::string(path));
  return it == content_.extra_assets.end() ? nullptr : &it->second;
}

Result<DataDirLoad> LoadDataDir(const fs::path& data_path) {
  std::error_code ec;
  if (!fs::is_directory(data_path, ec)) {
    return Fail(ErrorCode::kNotFound,
                "data path " + data_path.string() + " is not a readable directory");
  }
  DataDirLoad load;
  load.content.revision = "dir:" + data_path.string();
  for (const auto& file : ListFiles(data_path / "groups", ".json")) {
    std::string source = "groups/" + file.filename().string();
    std::string text = ReadWholeFile(file, ec);
    if (ec) {
      load.problems.push_back({source, "cannot read: " + ec.message()});
      continue;
    }
    auto group = ParseGroup(text, source);
    if (!group) {
      load.problems.push_back({source, group.error().message.substr(source.size() + 2)});
      continue;
    }
    load.content.groups.push_back(std::move(*group));
  }
  for (const auto& file : ListFiles(data_path / "profiles", ".json")) {
    std::string source = "profiles/" + file.filename().string();
    std::string text = ReadWholeFile(file, ec);
    if (ec) {
      load.problems.push_back({source, "cannot read: " + ec.message()});
      continue;
    }
    auto profile = ParseProfile(text, source);
    if (!profile) {
      load.problems.push_back({source, profile.error().message.substr(source.size() + 2)});
      continue;
    }
    // Matchbox finds a profile by its file name, not by the id inside it.
    std::string by_name = file.stem().string();
    if (profile->id != by_name) {
      load.problems.push_back(
          {source, "profile id \"" + profile->id + "\" differs from its file name; it is served as \"" +
                       by_name + "\" (Matchbox finds profiles by file name): rename the file or fix the id"});
      profile->id = by_name;
    }
    load.content.profiles.push_back(std::move(*profile));
  }
  for (const auto& file : ListFiles(data_path / "generic", nullptr)) {
    std::string text = ReadWholeFile(file, ec);
    if (ec) {
      load.problems.push_back({"generic/" + file.filename().string(), "cannot read: " + ec.message()});
      continue;
    }
    load.content.generic_templates.emplace(file.filename().string(), std::move(text));
  }
  return load;
}

}  // namespace ironboot::bootserver
