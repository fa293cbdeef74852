// Tests of the JSON Schema validator: the official JSON Schema Test Suite
// (Debian's json-schema-test-suite, draft 7 files: Debian's 2.0.0 package has
// no draft 2020-12 folder) for every keyword we implement, plus our own cases
// for 2020-12 spellings, error paths and messages, and compile errors.

#include "talos/json_schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace ironboot::talos {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::filesystem::path kSuiteDir = "/usr/share/json-schema-test-suite/tests/draft7";

// The suite files for the keywords we implement.
const std::vector<std::string> kSuiteFiles = {
    "additionalItems",
    "additionalProperties",
    "allOf",
    "anyOf",
    "boolean_schema",
    "const",
    "contains",
    "default",
    "definitions",
    "dependencies",
    "enum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "if-then-else",
    "items",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "multipleOf",
    "not",
    "oneOf",
    "pattern",
    "patternProperties",
    "properties",
    "propertyNames",
    "ref",
    "required",
    "type",
    "uniqueItems",
};
// Not run: refRemote.json (every case needs a remote document).

// Groups skipped, by "file: group description", with the reason.
const std::map<std::string, std::string> kSkippedGroups = {
    {"definitions: valid definition", "validates against the draft-07 metaschema, a remote $ref"},
    {"definitions: invalid definition", "validates against the draft-07 metaschema, a remote $ref"},
    {"ref: remote ref, containing refs itself", "remote $ref to the draft-07 metaschema"},
    {"ref: Recursive references between schemas", "needs $id below the root (base-URI changes)"},
};

struct SuiteCase {
  std::string name;  // for the test name
  std::string file;
  std::string group;
  std::string description;
  json schema;
  json data;
  bool valid = false;
};

std::vector<SuiteCase> LoadSuite() {
  std::vector<SuiteCase> cases;
  for (const auto& file : kSuiteFiles) {
    std::ifstream in(kSuiteDir / (file + ".json"));
    if (!in) {
      continue;  // reported by SuiteIsInstalled
    }
    json groups = json::parse(in);
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const auto& group = groups[g];
      for (std::size_t t = 0; t < group["tests"].size(); ++t) {
        const auto& test = group["tests"][t];
        std::string name = file + "_" + std::to_string(g) + "_" + std::to_string(t);
        for (char& c : name) {
          if (!std::isalnum(static_cast<unsigned char>(c))) {
            c = '_';
          }
        }
        cases.push_back(SuiteCase{name, file, group["description"], test["description"],
                                  group["schema"], test["data"], test["valid"].get<bool>()});
      }
    }
  }
  return cases;
}

class JsonSchemaSuiteTest : public ::testing::TestWithParam<SuiteCase> {};

// Each case of the official test suite gives the verdict the suite expects.
TEST_P(JsonSchemaSuiteTest, Verdict) {
  const SuiteCase& c = GetParam();
  if (auto it = kSkippedGroups.find(c.file + ": " + c.group); it != kSkippedGroups.end()) {
    GTEST_SKIP() << it->second;
  }
  auto schema = JsonSchema::Compile(c.schema, SchemaDialect::kDraft7);
  ASSERT_TRUE(schema.has_value()) << c.group << ": " << schema.error().message;
  auto errors = schema->Validate(c.data);
  std::string shown;
  for (const auto& e : errors) {
    shown += e.ToString() + "\n";
  }
  EXPECT_EQ(errors.empty(), c.valid) << c.file << " / " << c.group << " / " << c.description << "\n"
                                     << shown;
}

INSTANTIATE_TEST_SUITE_P(Draft7, JsonSchemaSuiteTest, ::testing::ValuesIn(LoadSuite()),
                         [](const auto& info) { return info.param.name; });

// The suite is installed (scripts/install-deps.sh) and every listed file loads.
TEST(JsonSchemaSuite, SuiteIsInstalled) {
  for (const auto& file : kSuiteFiles) {
    EXPECT_TRUE(std::filesystem::exists(kSuiteDir / (file + ".json"))) << file;
  }
  EXPECT_GT(LoadSuite().size(), 300u);
}

JsonSchema MustCompile(const json& schema) {
  auto compiled = JsonSchema::Compile(schema);
  EXPECT_TRUE(compiled.has_value()) << compiled.error().message;
  return *compiled;
}

std::vector<std::string> Errors(const JsonSchema& schema, const json& instance,
                                ValidateOptions options = {}) {
  std::vector<std::string> out;
  for (const auto& e : schema.Validate(instance, options)) {
    out.push_back(e.ToString());
  }
  return out;
}

const json kConfigSchema = json::parse(R"({
  "$defs": {
    "Machine": {
      "type": "object",
      "properties": {
        "type": {"enum": ["controlplane", "worker"]},
        "network": {"$ref": "#/$defs/Network"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535}
      },
      "required": ["type"],
      "additionalProperties": false
    },
    "Network": {
      "type": "object",
      "properties": {
        "interfaces": {"type": "array", "items": {"$ref": "#/$defs/Interface"}}
      },
      "additionalProperties": false
    },
    "Interface": {
      "type": "object",
      "properties": {
        "dhcp": {"type": "boolean"},
        "mac": {"type": "string", "pattern": "^([0-9a-f]{2}:){5}[0-9a-f]{2}$"},
        "bonds": {"type": "array", "items": {"$ref": "#/$defs/Interface"}}
      },
      "additionalProperties": false
    }
  },
  "type": "object",
  "properties": {"machine": {"$ref": "#/$defs/Machine"}},
  "additionalProperties": false
})");

// A valid instance has no errors; refs (including a recursive one) resolve.
TEST(JsonSchema, ValidInstance) {
  auto schema = MustCompile(kConfigSchema);
  json ok = json::parse(R"({"machine": {"type": "worker", "port": 50000,
      "network": {"interfaces": [{"dhcp": true, "bonds": [{"mac": "52:54:00:12:34:56"}]}]}}})");
  EXPECT_TRUE(Errors(schema, ok).empty());
}

// All errors are returned at once, each naming the instance path, the schema
// path and the bad value against what was expected.
TEST(JsonSchema, ReportsAllErrorsWithPaths) {
  auto schema = MustCompile(kConfigSchema);
  json bad = json::parse(R"({"machine": {"type": "server", "port": 0,
      "network": {"interfaces": [{"dhcp": "yes"}, {"bonds": [{"mac": "nope"}]}]}, "extra": 1}})");
  EXPECT_THAT(
      Errors(schema, bad),
      ::testing::UnorderedElementsAre(
          "/machine/type: \"server\" is not one of: \"controlplane\", \"worker\" "
          "(schema #/$defs/Machine/properties/type/enum)",
          "/machine/port: 0 is less than the minimum 1 (schema "
          "#/$defs/Machine/properties/port/minimum)",
          "/machine/network/interfaces/0/dhcp: is a string (\"yes\"), want boolean "
          "(schema #/$defs/Interface/properties/dhcp/type)",
          "/machine/network/interfaces/1/bonds/0/mac: \"nope\" does not match the pattern "
          "^([0-9a-f]{2}:){5}[0-9a-f]{2}$ (schema #/$defs/Interface/properties/mac/pattern)",
          "/machine/extra: field \"extra\" is not allowed here (known fields: network, port, type) "
          "(schema #/$defs/Machine/additionalProperties)"));
}

// A missing required field is reported on its parent object.
TEST(JsonSchema, MissingRequired) {
  auto schema = MustCompile(kConfigSchema);
  EXPECT_THAT(Errors(schema, json::parse(R"({"machine": {}})")),
              ::testing::ElementsAre(
                  "/machine: missing required field \"type\" (schema #/$defs/Machine/required)"));
}

// With quote_values off, messages never contain instance values (secrets).
TEST(JsonSchema, QuoteValuesOffHidesValues) {
  auto schema = MustCompile(kConfigSchema);
  ValidateOptions options;
  options.quote_values = false;
  auto errors = Errors(schema, json::parse(R"({"machine": {"type": "s3cr3t-token"}})"), options);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(errors[0], HasSubstr("string is not one of"));
}

// ValidateAt validates against a $defs entry; an unknown pointer is kNotFound.
TEST(JsonSchema, ValidateAtDefinition) {
  auto schema = MustCompile(kConfigSchema);
  auto errors = schema.ValidateAt("/$defs/Interface", json::parse(R"({"dhcp": 1})"));
  ASSERT_TRUE(errors.has_value());
  ASSERT_EQ(errors->size(), 1u);
  EXPECT_EQ((*errors)[0].instance_path, "/dhcp");
  EXPECT_EQ((*errors)[0].schema_path, "/$defs/Interface/properties/dhcp/type");
  auto missing = schema.ValidateAt("/$defs/Nope", json::object());
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

// 2020-12 spellings: prefixItems + items, $defs, dependentRequired, integer 1.0.
TEST(JsonSchema, Draft2020Keywords) {
  auto schema = MustCompile(json::parse(R"({
    "type": "object",
    "properties": {
      "pair": {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false},
      "n": {"type": "integer"}
    },
    "dependentRequired": {"a": ["b"]}
  })"));
  EXPECT_TRUE(Errors(schema, json::parse(R"({"pair": ["x", 1], "n": 1.0})")).empty());
  EXPECT_THAT(
      Errors(schema, json::parse(R"({"pair": ["x", 1, 2]})")),
      ::testing::ElementsAre("/pair/2: no value is allowed here (schema #/properties/pair/items)"));
  EXPECT_THAT(
      Errors(schema, json::parse(R"({"a": 1})")),
      ::testing::ElementsAre("/: field \"a\" requires field \"b\" (schema #/dependentRequired)"));
}

// oneOf failures say why each alternative did not match.
TEST(JsonSchema, OneOfExplainsAlternatives) {
  auto schema = MustCompile(
      json::parse(R"({"oneOf": [{"type": "string"}, {"type": "integer", "minimum": 5}]})"));
  auto errors = Errors(schema, json(3));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("matches none of the 2 alternatives of oneOf"));
  EXPECT_THAT(errors[0], HasSubstr("#0: / is an integer (3), want string"));
  EXPECT_THAT(errors[0], HasSubstr("#1: / 3 is less than the minimum 5"));
  auto two = MustCompile(json::parse(R"({"oneOf": [{"type": "integer"}, {"minimum": 1}]})"));
  EXPECT_THAT(Errors(two, json(3)),
              ::testing::ElementsAre(HasSubstr("matches 2 alternatives of oneOf (#0, #1)")));
}

// Patterns are ECMA-262 over code points, not bytes (Talos's duration pattern has "µ").
TEST(JsonSchema, PatternCountsCodePoints) {
  auto schema =
      MustCompile(json::parse(R"({"pattern": "^[0-9]+([nuµm]?s|m|h)$", "maxLength": 3})"));
  EXPECT_TRUE(Errors(schema, json("5µs")).empty());
  EXPECT_FALSE(Errors(schema, json("5xs")).empty());
}

// Schemas we cannot honour are refused at compile time with the schema path.
TEST(JsonSchema, CompileErrors) {
  struct Case {
    const char* schema;
    const char* message;
  } cases[] = {
      {R"({"$ref": "http://example.com/s.json"})",
       "schema #/$ref: $ref \"http://example.com/s.json\" points to another document"},
      {R"({"properties": {"a": {"$ref": "#/$defs/missing"}}})",
       "schema #/properties/a/$ref: $ref \"#/$defs/missing\" points to nothing"},
      {R"({"pattern": "(unclosed"})", "schema #/pattern: invalid regular expression \"(unclosed\""},
      {R"({"unevaluatedProperties": false})",
       "schema #/unevaluatedProperties: keyword unevaluatedProperties is not supported"},
      {R"({"type": "text"})", "schema #/type: unknown type \"text\""},
      {R"({"items": [{"type": "string"}]})",
       "schema #/items: must be a schema (use prefixItems for tuples)"},
      {R"({"properties": {"a": 5}})",
       "schema #/properties/a: a schema must be an object or a boolean, got integer"},
  };
  for (const auto& c : cases) {
    auto compiled = JsonSchema::Compile(json::parse(c.schema));
    ASSERT_FALSE(compiled.has_value()) << c.schema;
    EXPECT_THAT(compiled.error().message, HasSubstr(c.message)) << c.schema;
  }
}

// A schema that refers to itself without consuming input does not recurse forever.
TEST(JsonSchema, SelfReferenceTerminates) {
  auto schema =
      MustCompile(json::parse(R"({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})"));
  auto errors = Errors(schema, json(1));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("nest deeper than"));
}

}  // namespace
}  // namespace ironboot::talos
