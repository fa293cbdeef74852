// manifests/schema/*.json: every example document satisfies its kind's schema
// (structural subset: types, required, properties, additionalProperties,
// const, enum, pattern, items), and the schemas agree with the loader.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "manifests/repo_dir.h"
#include "tests/testutil/testutil.h"

namespace ironboot::manifests {
namespace {

using nlohmann::json;

// Appends to `errors` every way `node` violates `schema`.
void Check(const json& schema, const YAML::Node& node, const std::string& path,
           std::vector<std::string>& errors) {
  if (schema.contains("const")) {
    if (!node.IsScalar() ||
        node.Scalar() != (schema["const"].is_string() ? schema["const"].get<std::string>()
                                                      : schema["const"].dump())) {
      errors.push_back(path + ": want " + schema["const"].dump());
    }
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) {
      found |= node.IsScalar() && node.Scalar() == e.get<std::string>();
    }
    if (!found) {
      errors.push_back(path + ": not one of " + schema["enum"].dump());
    }
  }
  std::string type = schema.value("type", "");
  if (type == "object") {
    if (!node.IsMap()) {
      errors.push_back(path + ": want an object");
      return;
    }
    for (const auto& r : schema.value("required", json::array())) {
      if (!node[r.get<std::string>()].IsDefined()) {
        errors.push_back(path + "." + r.get<std::string>() + ": required");
      }
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.Scalar();
      const json props = schema.value("properties", json::object());
      if (props.contains(key)) {
        Check(props[key], it->second, path + "." + key, errors);
      } else if (schema.contains("additionalProperties")) {
        const json& extra = schema["additionalProperties"];
        if (extra.is_boolean() && !extra.get<bool>()) {
          errors.push_back(path + "." + key + ": not allowed");
        } else if (extra.is_object()) {
          Check(extra, it->second, path + "." + key, errors);
        }
      }
    }
  } else if (type == "array") {
    if (!node.IsSequence()) {
      errors.push_back(path + ": want an array");
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      if (schema.contains("items")) {
        Check(schema["items"], node[i], path + "[" + std::to_string(i) + "]", errors);
      }
    }
  } else if (type == "string" || type == "boolean" || type == "integer") {
    if (!node.IsScalar()) {
      errors.push_back(path + ": want a " + type);
    } else if (schema.contains("pattern") &&
               !std::regex_search(node.Scalar(),
                                  std::regex(schema["pattern"].get<std::string>()))) {
      errors.push_back(path + ": " + node.Scalar() + " does not match " + schema["pattern"].dump());
    }
  }
}

json Schema(const std::string& kind) {
  std::string lower;
  for (char c : kind) {
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return json::parse(testutil::ReadFile(std::string(IRONBOOT_SOURCE_DIR) + "/manifests/schema/" +
                                        lower + ".json"));
}

// Every ironboot document under examples/ satisfies its kind's JSON Schema.
TEST(SchemaTest, ExamplesSatisfyTheirSchemas) {
  auto files = ReadRepoDir(std::string(IRONBOOT_SOURCE_DIR) + "/examples");
  ASSERT_TRUE(files);
  int checked = 0;
  for (const auto& [path, content] : *files) {
    if (!path.ends_with(".yaml")) {
      continue;
    }
    for (const auto& doc : YAML::LoadAll(content)) {
      if (!doc.IsMap() || !doc["apiVersion"].IsDefined() ||
          !doc["apiVersion"].Scalar().starts_with("ironboot.dev/")) {
        continue;
      }
      std::vector<std::string> errors;
      Check(Schema(doc["kind"].Scalar()), doc, path, errors);
      EXPECT_TRUE(errors.empty()) << ::testing::PrintToString(errors);
      ++checked;
    }
  }
  EXPECT_GE(checked, 5);
}

// The schemas are draft 2020-12 and refuse a misspelled field, like the loader.
TEST(SchemaTest, SchemasRefuseUnknownFields) {
  for (const char* kind : {"Cluster", "TalosRelease", "Machine"}) {
    json schema = Schema(kind);
    EXPECT_EQ(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    YAML::Node doc = YAML::Load(std::string("apiVersion: ironboot.dev/v1alpha1\nkind: ") + kind +
                                "\nmetadata: {name: x}\nspec: {instalDisk: /dev/sda}\n");
    std::vector<std::string> errors;
    Check(schema, doc, "doc", errors);
    EXPECT_THAT(errors, ::testing::Contains("doc.spec.instalDisk: not allowed")) << kind;
  }
}

}  // namespace
}  // namespace ironboot::manifests
