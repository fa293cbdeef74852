#pragma once
// talos/: a JSON Schema validator for the subset of draft 2020-12 that Talos's
// machine-config schemas use (and a little more). A schema document is compiled
// once into a graph of nodes (local `$ref`s resolved, cycles allowed, regexes
// compiled); validation then walks the instance and returns every error.
//
// Supported keywords: $ref (local JSON pointers "#/..." only), $defs,
// definitions, type, enum, const, properties, required, additionalProperties,
// patternProperties, propertyNames, items, prefixItems, contains, minContains,
// maxContains, minItems, maxItems, uniqueItems, minProperties, maxProperties,
// dependentRequired, oneOf, anyOf, allOf, not, if/then/else, pattern,
// minLength, maxLength, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
// multipleOf, boolean schemas. Annotations (title, description,
// markdownDescription, format, default, examples, x-*) are ignored.
// Keywords whose meaning we do not implement ($dynamicRef, $anchor,
// unevaluatedProperties, ...) and refs to other documents make Compile fail
// rather than silently validate less.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace ironboot::talos {

// One reason an instance does not match its schema.
struct SchemaError {
  std::string instance_path;  // JSON pointer into the instance ("" = the whole document)
  std::string schema_path;    // JSON pointer of the failing keyword in the schema document
  std::string message;        // what is wrong and what was expected

  // "<instance_path>: <message> (schema <schema_path>)"; "/" stands for the root.
  std::string ToString() const;
};

// Which draft's rules to apply where drafts disagree. Talos's schemas are
// 2020-12; draft 7 exists so the official test suite's draft-7 files (the
// ones Debian ships) can run: there `items: [..]` is a tuple with
// `additionalItems`, and `$ref` hides its sibling keywords.
enum class SchemaDialect { kDraft2020_12, kDraft7 };

struct ValidateOptions {
  // When false, messages never quote instance values (use for documents that
  // hold secrets); they say only the value's type.
  bool quote_values = true;
  // Stop after this many errors (0 = no limit).
  std::size_t max_errors = 0;
};

// A compiled schema. Immutable after Compile, so one instance can serve many
// threads. Cheap to copy (shares the compiled graph).
class JsonSchema {
 public:
  // Compiles `document`. Errors (kInvalid) name the schema path and keyword:
  // a malformed keyword, an unresolvable or remote $ref, a bad regex, or an
  // unsupported keyword.
  static Result<JsonSchema> Compile(const nlohmann::json& document,
                                    SchemaDialect dialect = SchemaDialect::kDraft2020_12);

  // Validates against the document's root schema. Empty = valid.
  std::vector<SchemaError> Validate(const nlohmann::json& instance,
                                    const ValidateOptions& options = {}) const;

  // Validates against the subschema at JSON pointer `pointer` of the document
  // (e.g. "/$defs/v1alpha1.Config"). kNotFound when there is no such schema.
  Result<std::vector<SchemaError>> ValidateAt(std::string_view pointer,
                                              const nlohmann::json& instance,
                                              const ValidateOptions& options = {}) const;

  // The schema document as compiled (e.g. to look up $defs).
  const nlohmann::json& Document() const;

  struct Graph;  // the compiled nodes; defined in json_schema.cpp

 private:
  explicit JsonSchema(std::shared_ptr<const Graph> graph) : graph_(std::move(graph)) {}
  std::shared_ptr<const Graph> graph_;
};

}  // namespace ironboot::talos
