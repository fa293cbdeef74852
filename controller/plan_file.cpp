#include "controller/plan_file.h"

#include "common/atomic_file.h"
#include "common/json_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace ironboot::bootserver {
void to_json(nlohmann::json& j, const Group& g) {
  j = {{"id", g.id},       {"name", g.name},         {"profile", g.profile},
       {"selector", g.selector}, {"metadata", g.metadata}, {"source", g.source}};
}
void from_json(const nlohmann::json& j, Group& g) {
  j.at("id").get_to(g.id);
  j.at("name").get_to(g.name);
  j.at("profile").get_to(g.profile);
  j.at("selector").get_to(g.selector);
  g.metadata = j.at("metadata");
  j.at("source").get_to(g.source);
}
void to_json(nlohmann::json& j, const Profile& p) {
  j = {{"id", p.id},         {"name", p.name},   {"kernel", p.kernel},
       {"initrd", p.initrd}, {"args", p.args},   {"generic_id", p.generic_id},
       {"source", p.source}, {"local_boot", p.local_boot}};
}
void from_json(const nlohmann::json& j, Profile& p) {
  j.at("id").get_to(p.id);
  j.at("name").get_to(p.name);
  j.at("kernel").get_to(p.kernel);
  j.at("initrd").get_to(p.initrd);
  j.at("args").get_to(p.args);
  j.at("generic_id").get_to(p.generic_id);
  j.at("source").get_to(p.source);
  p.local_boot = j.value("local_boot", false);
}
}  // namespace ironboot::bootserver

namespace ironboot::manifests {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PlanAsset, url, sha512, sha512sum_url, sum_file_name, served_path)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(PlanRelease, version, arch, kernel, initramfs, installer_image)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(MachineSummary, name, role, macs, address, talos_version, arch,
                                   profile, paused)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(BootPlan, groups, profiles, machine_configs, machines, releases)
}  // namespace ironboot::manifests

namespace ironboot::controller {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr int kFormat = 1;
}

Result<void> SavePlan(const reconcilers::PublishedPlan& plan, const fs::path& file) {
  json assets = json::object();
  for (const auto& [served, path] : plan.assets) {
    assets[served] = path.string();
  }
  json doc = {{"format", kFormat}, {"revision", plan.revision}, {"plan", plan.plan}, {"assets", assets}};
  return WriteFileAtomically(file, JsonText(doc));
}

Result<reconcilers::PublishedPlan> LoadPlan(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Fail(ErrorCode::kNotFound, "no saved plan at " + file.string());
  }
  std::stringstream ss;
  ss << in.rdbuf();
  reconcilers::PublishedPlan out;
  try {
    json doc = json::parse(ss.str());
    if (doc.at("format").get<int>() != kFormat) {
      return Fail(ErrorCode::kInvalid, file.string() + ": unknown format " + JsonText(doc.at("format")));
    }
    doc.at("revision").get_to(out.revision);
    doc.at("plan").get_to(out.plan);
    for (const auto& [served, path] : doc.at("assets").items()) {
      out.assets[served] = path.get<std::string>();
    }
  } catch (const json::exception& e) {
    return Fail(ErrorCode::kInvalid, file.string() + ": not a saved plan: " + e.what());
  }
  for (const auto& [served, path] : out.assets) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      return Fail(ErrorCode::kInvalid, file.string() + ": asset " + served + " points at " +
                                           path.string() + ", which no longer exists");
    }
  }
  return out;
}

}  // namespace ironboot::controller
