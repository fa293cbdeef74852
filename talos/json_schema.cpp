#include "talos/json_schema.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <unordered_map>
#include <utility>

#include "common/json_text.h"

namespace ironboot::talos {

using nlohmann::json;

namespace {

enum TypeBit : unsigned {
  kNullBit = 1,
  kBooleanBit = 2,
  kIntegerBit = 4,
  kNumberBit = 8,
  kStringBit = 16,
  kArrayBit = 32,
  kObjectBit = 64,
};

std::optional<unsigned> TypeBitOf(std::string_view name) {
  if (name == "null")
    return kNullBit;
  if (name == "boolean")
    return kBooleanBit;
  if (name == "integer")
    return kIntegerBit;
  if (name == "number")
    return kNumberBit;
  if (name == "string")
    return kStringBit;
  if (name == "array")
    return kArrayBit;
  if (name == "object")
    return kObjectBit;
  return std::nullopt;
}

// Keywords whose semantics we do not implement: a schema using them would be
// validated less strictly than its author meant, so Compile refuses it.
const std::set<std::string, std::less<>> kUnsupported = {
    "$dynamicRef", "$dynamicAnchor",        "$recursiveRef",    "$recursiveAnchor",
    "$anchor",     "unevaluatedProperties", "unevaluatedItems", "contentSchema",
};

// UTF-8 to UTF-32 (wchar_t is 32-bit on Linux), so that regexes and lengths
// count code points as ECMA-262 and JSON Schema do. Invalid bytes map to
// U+FFFD.
std::wstring Widen(std::string_view s) {
  std::wstring out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::uint32_t cp = 0xFFFD;
    std::size_t n = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 0x6 && i + 1 < s.size()) {
      cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      n = 2;
    } else if ((c >> 4) == 0xE && i + 2 < s.size()) {
      cp = ((c & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
           (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
      n = 3;
    } else if ((c >> 3) == 0x1E && i + 3 < s.size()) {
      cp = ((c & 0x07u) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
           ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) |
           (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
      n = 4;
    }
    out.push_back(static_cast<wchar_t>(cp));
    i += n;
  }
  return out;
}

std::size_t CodePoints(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++n;
    }
  }
  return n;
}

std::string EscapePointerToken(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsInteger(const json& v) {
  if (v.is_number_integer()) {
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) && d == std::floor(d);
  }
  return false;
}

std::string TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return IsInteger(v) ? "integer" : "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "value";
  }
}

// How a message shows an instance value: scalars quoted (strings cut at 64
// characters) unless quoting is off; containers by their type only.
std::string Show(const json& v, bool quote) {
  if (v.is_object() || v.is_array() || !quote) {
    return TypeName(v);
  }
  std::string text = JsonText(v);
  if (text.size() > 66) {
    text = text.substr(0, 64) + "...\"";
  }
  return text;
}

// Schema constants (enum members, const) are the schema author's, not
// secrets: shown in full but cut when long.
std::string ShowSchemaValue(const json& v) {
  std::string text = JsonText(v);
  if (text.size() > 80) {
    text = text.substr(0, 77) + "...";
  }
  return text;
}

}  // namespace

struct JsonSchema::Graph {
  struct PatternProperty {
    std::shared_ptr<const std::wregex> regex;
    std::string source;
    int schema = -1;
  };
  struct Node {
    std::string path;  // JSON pointer of this schema in the document
    enum class Boolean { kNone, kTrue, kFalse } boolean = Boolean::kNone;
    unsigned types = 0;
    std::string types_text;
    bool has_const = false;
    json const_value;
    bool has_enum = false;
    std::vector<json> enum_values;
    std::map<std::string, int, std::less<>> properties;
    std::vector<std::string> required;
    int additional_properties = -1;
    std::vector<PatternProperty> pattern_properties;
    int property_names = -1;
    std::vector<int> prefix_items;
    std::string prefix_keyword;  // "prefixItems" or, in draft 7, "items"
    int items = -1;
    std::string items_keyword;  // "items" or, in draft 7, "additionalItems"
    int contains = -1;
    std::optional<std::size_t> min_contains, max_contains;
    std::optional<std::size_t> min_items, max_items, min_properties, max_properties;
    std::optional<std::size_t> min_length, max_length;
    bool unique_items = false;
    std::map<std::string, std::vector<std::string>> dependent_required;
    std::map<std::string, int> dependent_schemas;
    std::string dependent_required_keyword = "dependentRequired";
    std::string dependent_schemas_keyword = "dependentSchemas";
    std::vector<int> all_of, any_of, one_of;
    int not_schema = -1, if_schema = -1, then_schema = -1, else_schema = -1;
    int ref = -1;
    std::shared_ptr<const std::wregex> pattern;
    std::string pattern_source;
    std::optional<json> minimum, maximum, exclusive_minimum, exclusive_maximum;
    std::optional<double> multiple_of;
  };

  json document;
  SchemaDialect dialect = SchemaDialect::kDraft2020_12;
  std::vector<Node> nodes;
  std::unordered_map<std::string, int> by_path;
};

namespace {

using Graph = JsonSchema::Graph;
using Node = JsonSchema::Graph::Node;

class Compiler {
 public:
  explicit Compiler(Graph& graph) : graph_(graph) {}

  Result<int> CompileAt(const json& schema, const std::string& path) {
    if (auto it = graph_.by_path.find(path); it != graph_.by_path.end()) {
      return it->second;
    }
    if (!schema.is_object() && !schema.is_boolean()) {
      return Fail(
          ErrorCode::kInvalid,
          Where(path) + ": a schema must be an object or a boolean, got " + TypeName(schema));
    }
    int index = static_cast<int>(graph_.nodes.size());
    graph_.nodes.emplace_back();
    graph_.by_path.emplace(path, index);  // before children: refs back to us terminate
    Node node;
    node.path = path;
    if (schema.is_boolean()) {
      node.boolean = schema.get<bool>() ? Node::Boolean::kTrue : Node::Boolean::kFalse;
    } else if (auto filled = Fill(schema, path, node); !filled) {
      return std::unexpected(filled.error());
    }
    graph_.nodes[static_cast<std::size_t>(index)] = std::move(node);
    return index;
  }

 private:
  static std::string Where(const std::string& path) { return "schema #" + path; }

  Result<int> Child(const json& schema, const std::string& path, std::string_view keyword) {
    return CompileAt(schema, path + "/" + EscapePointerToken(keyword));
  }

  Result<std::vector<int>> ChildList(const json& list, const std::string& path,
                                     std::string_view keyword, bool allow_empty) {
    std::string at = path + "/" + std::string(keyword);
    if (!list.is_array() || (!allow_empty && list.empty())) {
      return Fail(ErrorCode::kInvalid, Where(at) + ": must be a non-empty array of schemas");
    }
    std::vector<int> out;
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto child = CompileAt(list[i], at + "/" + std::to_string(i));
      if (!child) {
        return std::unexpected(child.error());
      }
      out.push_back(*child);
    }
    return out;
  }

  Result<std::shared_ptr<const std::wregex>> Regex(const std::string& source,
                                                   const std::string& at) {
    if (auto it = regexes_.find(source); it != regexes_.end()) {
      return it->second;
    }
    try {
      auto re = std::make_shared<const std::wregex>(Widen(source), std::regex::ECMAScript);
      regexes_.emplace(source, re);
      return re;
    } catch (const std::regex_error& e) {
      return Fail(ErrorCode::kInvalid,
                  Where(at) + ": invalid regular expression \"" + source + "\": " + e.what());
    }
  }

  Result<std::size_t> Count(const json& v, const std::string& at) {
    if (!IsInteger(v) || v.get<double>() < 0) {
      return Fail(ErrorCode::kInvalid, Where(at) + ": must be a non-negative integer");
    }
    return static_cast<std::size_t>(v.get<double>());
  }

  Result<int> Ref(const json& ref, const std::string& at) {
    if (!ref.is_string()) {
      return Fail(ErrorCode::kInvalid, Where(at) + ": $ref must be a string");
    }
    const std::string& text = ref.get_ref<const std::string&>();
    if (text.empty() || text[0] != '#') {
      return Fail(ErrorCode::kInvalid,
                  Where(at) + ": $ref \"" + text +
                      "\" points to another document; only local refs (\"#/...\") are supported");
    }
    std::string pointer = PercentDecode(std::string_view(text).substr(1));
    if (!pointer.empty() && pointer[0] != '/') {
      return Fail(ErrorCode::kInvalid, Where(at) + ": $ref \"" + text +
                                           "\" is an anchor; only JSON-pointer refs are supported");
    }
    try {
      json::json_pointer ptr(pointer);
      if (!graph_.document.contains(ptr)) {
        return Fail(ErrorCode::kInvalid,
                    Where(at) + ": $ref \"" + text + "\" points to nothing in the document");
      }
      return CompileAt(graph_.document.at(ptr), ptr.to_string());
    } catch (const json::exception& e) {
      return Fail(ErrorCode::kInvalid,
                  Where(at) + ": $ref \"" + text + "\" is not a valid JSON pointer: " + e.what());
    }
  }

  Result<void> Fill(const json& s, const std::string& path, Node& n) {
    const bool draft7 = graph_.dialect == SchemaDialect::kDraft7;
    auto kw = [&](std::string_view k) { return path + "/" + EscapePointerToken(k); };
    // Definitions compile first so that ValidateAt can reach them.
    for (const char* defs : {"$defs", "definitions"}) {
      if (auto it = s.find(defs); it != s.end() && it->is_object()) {
        for (const auto& [name, sub] : it->items()) {
          if (auto c = CompileAt(sub, kw(defs) + "/" + EscapePointerToken(name)); !c) {
            return std::unexpected(c.error());
          }
        }
      }
    }
    if (auto it = s.find("$ref"); it != s.end()) {
      auto r = Ref(*it, kw("$ref"));
      if (!r) {
        return std::unexpected(r.error());
      }
      n.ref = *r;
      if (draft7) {
        return {};  // draft 7: $ref hides its siblings
      }
    }
    if (auto it = s.find("$id"); it != s.end() && !path.empty()) {
      return Fail(ErrorCode::kInvalid,
                  Where(kw("$id")) + ": $id below the root (a new base URI) is not supported");
    }
    for (const auto& [key, value] : s.items()) {
      if (kUnsupported.contains(key)) {
        return Fail(ErrorCode::kInvalid, Where(kw(key)) + ": keyword " + key + " is not supported");
      }
    }
    if (auto it = s.find("type"); it != s.end()) {
      std::vector<std::string> names;
      if (it->is_string()) {
        names.push_back(it->get<std::string>());
      } else if (it->is_array()) {
        for (const auto& t : *it) {
          names.push_back(t.is_string() ? t.get<std::string>() : std::string("?"));
        }
      }
      if (names.empty()) {
        return Fail(ErrorCode::kInvalid,
                    Where(kw("type")) + ": must be a type name or an array of them");
      }
      for (const auto& name : names) {
        auto bit = TypeBitOf(name);
        if (!bit) {
          return Fail(ErrorCode::kInvalid, Where(kw("type")) + ": unknown type \"" + name + "\"");
        }
        n.types |= *bit;
        n.types_text += (n.types_text.empty() ? "" : " or ") + name;
      }
    }
    if (auto it = s.find("const"); it != s.end()) {
      n.has_const = true;
      n.const_value = *it;
    }
    if (auto it = s.find("enum"); it != s.end()) {
      if (!it->is_array()) {
        return Fail(ErrorCode::kInvalid, Where(kw("enum")) + ": must be an array");
      }
      n.has_enum = true;
      n.enum_values.assign(it->begin(), it->end());
    }
    if (auto it = s.find("properties"); it != s.end()) {
      if (!it->is_object()) {
        return Fail(ErrorCode::kInvalid, Where(kw("properties")) + ": must be an object");
      }
      for (const auto& [name, sub] : it->items()) {
        auto c = CompileAt(sub, kw("properties") + "/" + EscapePointerToken(name));
        if (!c) {
          return std::unexpected(c.error());
        }
        n.properties.emplace(name, *c);
      }
    }
    if (auto it = s.find("required"); it != s.end()) {
      if (!it->is_array()) {
        return Fail(ErrorCode::kInvalid, Where(kw("required")) + ": must be an array of strings");
      }
      for (const auto& r : *it) {
        if (!r.is_string()) {
          return Fail(ErrorCode::kInvalid, Where(kw("required")) + ": must be an array of strings");
        }
        n.required.push_back(r.get<std::string>());
      }
    }
    if (auto it = s.find("patternProperties"); it != s.end()) {
      if (!it->is_object()) {
        return Fail(ErrorCode::kInvalid, Where(kw("patternProperties")) + ": must be an object");
      }
      for (const auto& [source, sub] : it->items()) {
        std::string at = kw("patternProperties") + "/" + EscapePointerToken(source);
        auto re = Regex(source, at);
        if (!re) {
          return std::unexpected(re.error());
        }
        auto c = CompileAt(sub, at);
        if (!c) {
          return std::unexpected(c.error());
        }
        n.pattern_properties.push_back({*re, source, *c});
      }
    }
    for (auto [keyword, slot] :
         {std::pair{"additionalProperties", &n.additional_properties},
          std::pair{"propertyNames", &n.property_names}, std::pair{"contains", &n.contains},
          std::pair{"not", &n.not_schema}, std::pair{"if", &n.if_schema},
          std::pair{"then", &n.then_schema}, std::pair{"else", &n.else_schema}}) {
      if (auto it = s.find(keyword); it != s.end()) {
        auto c = Child(*it, path, keyword);
        if (!c) {
          return std::unexpected(c.error());
        }
        *slot = *c;
      }
    }
    const char* prefix_keyword = draft7 ? "items" : "prefixItems";
    const char* items_keyword = draft7 ? "additionalItems" : "items";
    if (auto it = s.find(prefix_keyword); it != s.end() && it->is_array()) {
      auto list = ChildList(*it, path, prefix_keyword, true);
      if (!list) {
        return std::unexpected(list.error());
      }
      n.prefix_items = *list;
      n.prefix_keyword = prefix_keyword;
      if (auto add = s.find(items_keyword); add != s.end()) {
        auto c = Child(*add, path, items_keyword);
        if (!c) {
          return std::unexpected(c.error());
        }
        n.items = *c;
        n.items_keyword = items_keyword;
      }
    }
    if (auto it = s.find("items"); it != s.end() && !it->is_array()) {
      auto c = Child(*it, path, "items");
      if (!c) {
        return std::unexpected(c.error());
      }
      n.items = *c;
      n.items_keyword = "items";
    } else if (it != s.end() && !draft7) {
      return Fail(ErrorCode::kInvalid,
                  Where(kw("items")) + ": must be a schema (use prefixItems for tuples)");
    }
    for (auto [keyword, slot] : {std::pair{"allOf", &n.all_of}, std::pair{"anyOf", &n.any_of},
                                 std::pair{"oneOf", &n.one_of}}) {
      if (auto it = s.find(keyword); it != s.end()) {
        auto list = ChildList(*it, path, keyword, false);
        if (!list) {
          return std::unexpected(list.error());
        }
        *slot = *list;
      }
    }
    for (auto [keyword, slot] :
         {std::pair{"minItems", &n.min_items}, std::pair{"maxItems", &n.max_items},
          std::pair{"minProperties", &n.min_properties},
          std::pair{"maxProperties", &n.max_properties}, std::pair{"minLength", &n.min_length},
          std::pair{"maxLength", &n.max_length}, std::pair{"minContains", &n.min_contains},
          std::pair{"maxContains", &n.max_contains}}) {
      if (auto it = s.find(keyword); it != s.end()) {
        auto c = Count(*it, kw(keyword));
        if (!c) {
          return std::unexpected(c.error());
        }
        *slot = *c;
      }
    }
    for (auto [keyword, slot] : {std::pair{"minimum", &n.minimum}, std::pair{"maximum", &n.maximum},
                                 std::pair{"exclusiveMinimum", &n.exclusive_minimum},
                                 std::pair{"exclusiveMaximum", &n.exclusive_maximum}}) {
      if (auto it = s.find(keyword); it != s.end()) {
        if (!it->is_number()) {
          return Fail(ErrorCode::kInvalid, Where(kw(keyword)) + ": must be a number");
        }
        *slot = *it;
      }
    }
    if (auto it = s.find("multipleOf"); it != s.end()) {
      if (!it->is_number() || it->get<double>() <= 0) {
        return Fail(ErrorCode::kInvalid,
                    Where(kw("multipleOf")) + ": must be a number greater than 0");
      }
      n.multiple_of = it->get<double>();
    }
    if (auto it = s.find("uniqueItems"); it != s.end() && it->is_boolean()) {
      n.unique_items = it->get<bool>();
    }
    if (auto it = s.find("pattern"); it != s.end()) {
      if (!it->is_string()) {
        return Fail(ErrorCode::kInvalid, Where(kw("pattern")) + ": must be a string");
      }
      auto re = Regex(it->get<std::string>(), kw("pattern"));
      if (!re) {
        return std::unexpected(re.error());
      }
      n.pattern = *re;
      n.pattern_source = it->get<std::string>();
    }
    // dependentRequired / dependentSchemas; draft 7 spells both "dependencies".
    auto dependencies = [&](const char* keyword, bool arrays, bool schemas) -> Result<void> {
      auto it = s.find(keyword);
      if (it == s.end()) {
        return {};
      }
      if (!it->is_object()) {
        return Fail(ErrorCode::kInvalid, Where(kw(keyword)) + ": must be an object");
      }
      for (const auto& [name, dep] : it->items()) {
        if (arrays && dep.is_array()) {
          std::vector<std::string> names;
          for (const auto& d : dep) {
            if (!d.is_string()) {
              return Fail(ErrorCode::kInvalid,
                          Where(kw(keyword)) + ": dependencies must be strings");
            }
            names.push_back(d.get<std::string>());
          }
          n.dependent_required[name] = std::move(names);
          n.dependent_required_keyword = keyword;
        } else if (schemas) {
          auto c = CompileAt(dep, kw(keyword) + "/" + EscapePointerToken(name));
          if (!c) {
            return std::unexpected(c.error());
          }
          n.dependent_schemas[name] = *c;
          n.dependent_schemas_keyword = keyword;
        } else {
          return Fail(ErrorCode::kInvalid,
                      Where(kw(keyword)) + ": must map names to arrays of names");
        }
      }
      return {};
    };
    for (auto r : {dependencies("dependentRequired", true, false),
                   dependencies("dependentSchemas", false, true),
                   draft7 ? dependencies("dependencies", true, true) : Result<void>{}}) {
      if (!r) {
        return r;
      }
    }
    return {};
  }

  Graph& graph_;
  std::map<std::string, std::shared_ptr<const std::wregex>> regexes_;
};

constexpr int kMaxDepth = 256;

class Validator {
 public:
  Validator(const Graph& graph, const ValidateOptions& options, std::vector<SchemaError>& errors)
      : graph_(graph), options_(options), errors_(errors) {}

  // Returns whether `v` is valid at node `index`. With `collect` false it
  // records nothing and stops at the first failure (oneOf/anyOf/not probes).
  bool Check(int index, const json& v, std::string& at, bool collect, int depth = 0) {
    const Node& n = graph_.nodes[static_cast<std::size_t>(index)];
    if (n.boolean == Node::Boolean::kTrue) {
      return true;
    }
    if (n.boolean == Node::Boolean::kFalse) {
      return Report(collect, at, n.path, "no value is allowed here");
    }
    if (depth > kMaxDepth) {
      return Report(collect, at, n.path,
                    "schema references nest deeper than " + std::to_string(kMaxDepth));
    }
    bool ok = true;
    auto fail = [&](std::string_view keyword, std::string message) {
      ok = false;
      Report(collect, at, n.path + "/" + std::string(keyword), std::move(message));
      return !collect;  // true = stop early
    };
    if (n.ref >= 0) {
      if (!Check(n.ref, v, at, collect, depth + 1)) {
        ok = false;
        if (!collect) {
          return false;
        }
      }
    }
    if (n.types != 0 && !TypeMatches(n.types, v)) {
      // The other keywords would only repeat the type mismatch.
      fail("type", "is " + Article(v) + ", want " + n.types_text);
      return false;
    }
    if (n.has_const && v != n.const_value) {
      if (fail("const",
               Show(v, options_.quote_values) + " must be " + ShowSchemaValue(n.const_value))) {
        return false;
      }
    }
    if (n.has_enum) {
      bool found = false;
      for (const auto& e : n.enum_values) {
        if (v == e) {
          found = true;
          break;
        }
      }
      if (!found) {
        std::string allowed;
        for (std::size_t i = 0; i < n.enum_values.size() && i < 20; ++i) {
          allowed += (i ? ", " : "") + ShowSchemaValue(n.enum_values[i]);
        }
        if (n.enum_values.size() > 20) {
          allowed += ", ...";
        }
        if (fail("enum", Show(v, options_.quote_values) + " is not one of: " + allowed)) {
          return false;
        }
      }
    }
    if (v.is_number()) {
      if (!CheckNumber(n, v, fail)) {
        return false;
      }
    } else if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (n.min_length || n.max_length) {
        std::size_t len = CodePoints(s);
        if (n.min_length && len < *n.min_length &&
            fail("minLength", "is " + std::to_string(len) + " characters long, want at least " +
                                  std::to_string(*n.min_length))) {
          return false;
        }
        if (n.max_length && len > *n.max_length &&
            fail("maxLength", "is " + std::to_string(len) + " characters long, want at most " +
                                  std::to_string(*n.max_length))) {
          return false;
        }
      }
      if (n.pattern && !std::regex_search(Widen(s), *n.pattern) &&
          fail("pattern", Show(v, options_.quote_values) + " does not match the pattern " +
                              n.pattern_source)) {
        return false;
      }
    } else if (v.is_array()) {
      if (!CheckArray(n, v, at, collect, depth, ok, fail)) {
        return false;
      }
    } else if (v.is_object()) {
      if (!CheckObject(n, v, at, collect, depth, ok, fail)) {
        return false;
      }
    }
    for (int sub : n.all_of) {
      if (!Check(sub, v, at, collect, depth + 1)) {
        ok = false;
        if (!collect) {
          return false;
        }
      }
    }
    if (!n.any_of.empty()) {
      bool any = false;
      for (int sub : n.any_of) {
        if (Probe(sub, v, at, depth)) {
          any = true;
          break;
        }
      }
      if (!any && fail("anyOf", "matches none of the " + std::to_string(n.any_of.size()) +
                                    " alternatives of anyOf" + Reasons(n.any_of, v, at, depth))) {
        return false;
      }
    }
    if (!n.one_of.empty()) {
      std::vector<std::size_t> matched;
      for (std::size_t i = 0; i < n.one_of.size(); ++i) {
        if (Probe(n.one_of[i], v, at, depth)) {
          matched.push_back(i);
        }
      }
      if (matched.empty()) {
        if (fail("oneOf", "matches none of the " + std::to_string(n.one_of.size()) +
                              " alternatives of oneOf" + Reasons(n.one_of, v, at, depth))) {
          return false;
        }
      } else if (matched.size() > 1) {
        std::string which;
        for (std::size_t m : matched) {
          which += (which.empty() ? "#" : ", #") + std::to_string(m);
        }
        if (fail("oneOf", "matches " + std::to_string(matched.size()) + " alternatives of oneOf (" +
                              which + "), want exactly one")) {
          return false;
        }
      }
    }
    if (n.not_schema >= 0 && Probe(n.not_schema, v, at, depth) &&
        fail("not", "must not match the schema at #" +
                        graph_.nodes[static_cast<std::size_t>(n.not_schema)].path)) {
      return false;
    }
    if (n.if_schema >= 0) {
      int branch = Probe(n.if_schema, v, at, depth) ? n.then_schema : n.else_schema;
      if (branch >= 0 && !Check(branch, v, at, collect, depth + 1)) {
        ok = false;
      }
    }
    return ok;
  }

 private:
  bool Report(bool collect, const std::string& at, std::string schema_path, std::string message) {
    if (collect && (options_.max_errors == 0 || errors_.size() < options_.max_errors)) {
      errors_.push_back(SchemaError{at, std::move(schema_path), std::move(message)});
    }
    return false;
  }

  bool Probe(int index, const json& v, std::string& at, int depth) {
    return Check(index, v, at, false, depth + 1);
  }

  // For a failed anyOf/oneOf: the first error of each alternative, so the
  // reader sees why the closest one did not match.
  std::string Reasons(const std::vector<int>& alternatives, const json& v, std::string& at,
                      int depth) {
    std::string out = " (";
    for (std::size_t i = 0; i < alternatives.size() && i < 8; ++i) {
      std::vector<SchemaError> sub;
      ValidateOptions one = options_;
      one.max_errors = 1;
      Validator probe(graph_, one, sub);
      probe.Check(alternatives[i], v, at, true, depth + 1);
      out += (i ? "; #" : "#") + std::to_string(i) + ": ";
      if (!sub.empty()) {
        out += (sub[0].instance_path.empty() ? "/" : sub[0].instance_path) + " " + sub[0].message;
      }
    }
    return out + ")";
  }

  static bool TypeMatches(unsigned types, const json& v) {
    switch (v.type()) {
      case json::value_t::null:
        return types & kNullBit;
      case json::value_t::boolean:
        return types & kBooleanBit;
      case json::value_t::number_integer:
      case json::value_t::number_unsigned:
        return types & (kIntegerBit | kNumberBit);
      case json::value_t::number_float:
        return (types & kNumberBit) || ((types & kIntegerBit) && IsInteger(v));
      case json::value_t::string:
        return types & kStringBit;
      case json::value_t::array:
        return types & kArrayBit;
      case json::value_t::object:
        return types & kObjectBit;
      default:
        return false;
    }
  }

  std::string Article(const json& v) const {
    std::string type = TypeName(v);
    std::string article = (type == "integer" || type == "array" || type == "object") ? "an " : "a ";
    if (v.is_object() || v.is_array() || !options_.quote_values) {
      return article + type;
    }
    return article + type + " (" + Show(v, true) + ")";
  }

  template <class Fail>
  bool CheckNumber(const Node& n, const json& v, Fail& fail) {
    const double x = v.get<double>();
    auto shown = [&] { return Show(v, options_.quote_values); };
    if (n.minimum && x < n.minimum->get<double>() &&
        fail("minimum", shown() + " is less than the minimum " + JsonText(*n.minimum))) {
      return false;
    }
    if (n.maximum && x > n.maximum->get<double>() &&
        fail("maximum", shown() + " is greater than the maximum " + JsonText(*n.maximum))) {
      return false;
    }
    if (n.exclusive_minimum && x <= n.exclusive_minimum->get<double>() &&
        fail("exclusiveMinimum",
             shown() + " must be greater than " + JsonText(*n.exclusive_minimum))) {
      return false;
    }
    if (n.exclusive_maximum && x >= n.exclusive_maximum->get<double>() &&
        fail("exclusiveMaximum", shown() + " must be less than " + JsonText(*n.exclusive_maximum))) {
      return false;
    }
    if (n.multiple_of) {
      double q = x / *n.multiple_of;
      bool multiple =
          std::isfinite(q) && std::fabs(q - std::round(q)) <= 1e-9 * std::max(1.0, std::fabs(q));
      if (!multiple &&
          fail("multipleOf", shown() + " is not a multiple of " + JsonText(json(*n.multiple_of)))) {
        return false;
      }
    }
    return true;
  }

  template <class Fail>
  bool CheckArray(const Node& n, const json& v, std::string& at, bool collect, int depth, bool& ok,
                  Fail& fail) {
    const std::size_t size = v.size();
    if (n.min_items && size < *n.min_items &&
        fail("minItems", "has " + std::to_string(size) + " items, want at least " +
                             std::to_string(*n.min_items))) {
      return false;
    }
    if (n.max_items && size > *n.max_items &&
        fail("maxItems", "has " + std::to_string(size) + " items, want at most " +
                             std::to_string(*n.max_items))) {
      return false;
    }
    if (n.unique_items) {
      for (std::size_t i = 0; i < size; ++i) {
        for (std::size_t j = i + 1; j < size; ++j) {
          if (v[i] == v[j] &&
              fail("uniqueItems", "items " + std::to_string(i) + " and " + std::to_string(j) +
                                      " are equal; items must be unique")) {
            return false;
          }
        }
      }
    }
    for (std::size_t i = 0; i < size; ++i) {
      int sub = i < n.prefix_items.size() ? n.prefix_items[i] : n.items;
      if (sub < 0) {
        continue;
      }
      std::size_t mark = at.size();
      at += "/" + std::to_string(i);
      bool good = Check(sub, v[i], at, collect, depth + 1);
      at.resize(mark);
      if (!good) {
        ok = false;
        if (!collect) {
          return false;
        }
      }
    }
    if (n.contains >= 0) {
      std::size_t matches = 0;
      for (std::size_t i = 0; i < size; ++i) {
        std::size_t mark = at.size();
        at += "/" + std::to_string(i);
        if (Probe(n.contains, v[i], at, depth)) {
          ++matches;
        }
        at.resize(mark);
      }
      std::size_t want = n.min_contains.value_or(1);
      if (matches < want &&
          fail(n.min_contains ? "minContains" : "contains",
               "has " + std::to_string(matches) + " items matching contains, want at least " +
                   std::to_string(want))) {
        return false;
      }
      if (n.max_contains && matches > *n.max_contains &&
          fail("maxContains", "has " + std::to_string(matches) +
                                  " items matching contains, want at most " +
                                  std::to_string(*n.max_contains))) {
        return false;
      }
    }
    return true;
  }

  template <class Fail>
  bool CheckObject(const Node& n, const json& v, std::string& at, bool collect, int depth, bool& ok,
                   Fail& fail) {
    if (n.min_properties && v.size() < *n.min_properties &&
        fail("minProperties", "has " + std::to_string(v.size()) + " fields, want at least " +
                                  std::to_string(*n.min_properties))) {
      return false;
    }
    if (n.max_properties && v.size() > *n.max_properties &&
        fail("maxProperties", "has " + std::to_string(v.size()) + " fields, want at most " +
                                  std::to_string(*n.max_properties))) {
      return false;
    }
    for (const auto& name : n.required) {
      if (!v.contains(name) && fail("required", "missing required field \"" + name + "\"")) {
        return false;
      }
    }
    for (const auto& [name, deps] : n.dependent_required) {
      if (!v.contains(name)) {
        continue;
      }
      for (const auto& dep : deps) {
        if (!v.contains(dep) && fail(n.dependent_required_keyword,
                                     "field \"" + name + "\" requires field \"" + dep + "\"")) {
          return false;
        }
      }
    }
    for (const auto& [name, sub] : n.dependent_schemas) {
      if (v.contains(name) && !Check(sub, v, at, collect, depth + 1)) {
        ok = false;
        if (!collect) {
          return false;
        }
      }
    }
    const bool need_keys = n.property_names >= 0 || !n.properties.empty() ||
                           !n.pattern_properties.empty() || n.additional_properties >= 0;
    if (!need_keys) {
      return true;
    }
    for (const auto& [key, value] : v.items()) {
      std::size_t mark = at.size();
      at += "/" + EscapePointerToken(key);
      bool good = true;
      if (n.property_names >= 0) {
        std::string key_at = at;
        if (!Check(n.property_names, json(key), key_at, collect, depth + 1)) {
          good = false;
        }
      }
      bool matched = false;
      if (auto it = n.properties.find(key); it != n.properties.end()) {
        matched = true;
        good = Check(it->second, value, at, collect, depth + 1) && good;
      }
      if (!n.pattern_properties.empty()) {
        std::wstring wide = Widen(key);
        for (const auto& pp : n.pattern_properties) {
          if (std::regex_search(wide, *pp.regex)) {
            matched = true;
            good = Check(pp.schema, value, at, collect, depth + 1) && good;
          }
        }
      }
      if (!matched && n.additional_properties >= 0) {
        const Node& add = graph_.nodes[static_cast<std::size_t>(n.additional_properties)];
        if (add.boolean == Node::Boolean::kFalse) {
          good = false;
          Report(collect, at, add.path, "field \"" + key + "\" is not allowed here" + Known(n));
        } else {
          good = Check(n.additional_properties, value, at, collect, depth + 1) && good;
        }
      }
      at.resize(mark);
      if (!good) {
        ok = false;
        if (!collect) {
          return false;
        }
      }
    }
    return true;
  }

  static std::string Known(const Node& n) {
    if (n.properties.empty()) {
      return "";
    }
    std::string out = " (known fields: ";
    std::size_t i = 0;
    for (const auto& [name, _] : n.properties) {
      if (i == 30) {
        out += ", ...";
        break;
      }
      out += (i++ ? ", " : "") + name;
    }
    return out + ")";
  }

  const Graph& graph_;
  const ValidateOptions& options_;
  std::vector<SchemaError>& errors_;
};

}  // namespace

std::string SchemaError::ToString() const {
  return (instance_path.empty() ? std::string("/") : instance_path) + ": " + message +
         " (schema #" + schema_path + ")";
}

Result<JsonSchema> JsonSchema::Compile(const nlohmann::json& document, SchemaDialect dialect) {
  auto graph = std::make_shared<Graph>();
  graph->document = document;
  graph->dialect = dialect;
  Compiler compiler(*graph);
  auto root = compiler.CompileAt(graph->document, "");
  if (!root) {
    return std::unexpected(root.error());
  }
  return JsonSchema(std::move(graph));
}

std::vector<SchemaError> JsonSchema::Validate(const nlohmann::json& instance,
                                              const ValidateOptions& options) const {
  std::vector<SchemaError> errors;
  Validator validator(*graph_, options, errors);
  std::string at;
  validator.Check(0, instance, at, true);
  return errors;
}

Result<std::vector<SchemaError>> JsonSchema::ValidateAt(std::string_view pointer,
                                                        const nlohmann::json& instance,
                                                        const ValidateOptions& options) const {
  auto it = graph_->by_path.find(std::string(pointer));
  if (it == graph_->by_path.end()) {
    return Fail(ErrorCode::kNotFound,
                "no schema at #" + std::string(pointer) + " in the compiled document");
  }
  std::vector<SchemaError> errors;
  Validator validator(*graph_, options, errors);
  std::string at;
  validator.Check(it->second, instance, at, true);
  return errors;
}

const nlohmann::json& JsonSchema::Document() const {
  return graph_->document;
}

}  // namespace ironboot::talos
