#pragma once
// talos/: an ordered YAML/JSON value tree, the common ground of strategic merge
// and RFC 6902 patches. Parsing goes through libyaml (JSON through nlohmann);
// emitting is ours, deterministic, in the style talosctl writes (4-space
// indent), keeping map keys in the order they were first seen.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace ironboot::talos {

enum class ValueKind { kNull, kBool, kInt, kFloat, kString, kSequence, kMap };

struct MapEntry;

// A YAML node. Scalars keep their source text (so `0o755` or `1e3` round-trip)
// plus the type YAML 1.2's core schema resolves them to; a quoted or block
// scalar is always a string. Map keys are strings, in insertion order.
struct Value {
  ValueKind kind = ValueKind::kNull;
  std::string scalar;             // text of a scalar ("true"/"false" for bools)
  std::vector<Value> items;       // kSequence
  std::vector<MapEntry> entries;  // kMap
  int line = 0;                   // 1-based line in its source; 0 when made in code
  bool plain = false;             // a scalar written unquoted in its source

  static Value String(std::string s);
  static Value Map();
  static Value Sequence();

  bool IsMap() const { return kind == ValueKind::kMap; }
  bool IsSequence() const { return kind == ValueKind::kSequence; }
  bool IsScalar() const { return kind != ValueKind::kMap && kind != ValueKind::kSequence; }
  bool IsNull() const { return kind == ValueKind::kNull; }

  // Map access; linear in the number of keys (configs have few per map).
  Value* Find(std::string_view key);
  const Value* Find(std::string_view key) const;
  // Replaces the value of `key` in place, or appends it.
  Value& Set(std::string_view key, Value v);
  // Removes `key`; returns whether it was there.
  bool Erase(std::string_view key);

  // Go's "zero value": null, "", 0, 0.0 (false is NOT zero: it always applies).
  bool IsZeroScalar() const;
  // A scalar's text if it is a string-ish scalar usable as a key; "" otherwise.
  const std::string& Text() const { return scalar; }
};

struct MapEntry {
  std::string key;
  Value value;
};

// Deep equality as JSON sees it: map key order ignored, numbers by value.
bool Equal(const Value& a, const Value& b);

// The type a plain (unquoted) scalar resolves to.
ValueKind ResolvePlainScalar(std::string_view text);

// Parses every document of `text` (separated by "---"); empty documents are
// skipped. Errors (kInvalid) read "<source>:<line>:<column>: <what>".
Result<std::vector<Value>> ParseYamlDocuments(std::string_view text, std::string_view source);

// Emits documents separated by "---". Deterministic; keeps key order. A string
// with newlines is written as a literal block scalar; like Talos's encoder,
// leading newlines of such a string are dropped so that it can be one.
std::string EmitYaml(const std::vector<Value>& documents);
std::string EmitYaml(const Value& document);

}  // namespace ironboot::talos
