#include "talos/yaml_value.h"

#include <yaml.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <unordered_set>

#include "common/json_text.h"

namespace ironboot::talos {

Value Value::String(std::string s) {
  Value v;
  v.kind = ValueKind::kString;
  v.scalar = std::move(s);
  return v;
}

Value Value::Map() {
  Value v;
  v.kind = ValueKind::kMap;
  return v;
}

Value Value::Sequence() {
  Value v;
  v.kind = ValueKind::kSequence;
  return v;
}

Value* Value::Find(std::string_view key) {
  for (auto& e : entries) {
    if (e.key == key) {
      return &e.value;
    }
  }
  return nullptr;
}

const Value* Value::Find(std::string_view key) const {
  for (const auto& e : entries) {
    if (e.key == key) {
      return &e.value;
    }
  }
  return nullptr;
}

Value& Value::Set(std::string_view key, Value v) {
  if (Value* existing = Find(key)) {
    *existing = std::move(v);
    return *existing;
  }
  entries.push_back(MapEntry{std::string(key), std::move(v)});
  return entries.back().value;
}

bool Value::Erase(std::string_view key) {
  auto it =
      std::find_if(entries.begin(), entries.end(), [&](const MapEntry& e) { return e.key == key; });
  if (it == entries.end()) {
    return false;
  }
  entries.erase(it);
  return true;
}

namespace {

bool ParseInt(std::string_view text, long long* out) {
  std::string s(text);
  std::erase(s, '_');
  int base = 10;
  size_t start = 0;
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    start = 1;
  }
  if (s.size() > start + 2 && s[start] == '0') {
    char p = s[start + 1];
    if (p == 'x' || p == 'X') {
      base = 16;
      start += 2;
    } else if (p == 'o' || p == 'O') {
      base = 8;
      start += 2;
    } else if (p == 'b' || p == 'B') {
      base = 2;
      start += 2;
    }
  }
  if (start >= s.size()) {
    return false;
  }
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str() + start, &end, base);
  if (errno != 0 || end != s.c_str() + s.size()) {
    return false;
  }
  *out = negative ? -static_cast<long long>(v) : static_cast<long long>(v);
  return true;
}

double ParseFloat(std::string_view text) {
  std::string s(text);
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == ".inf" || lower == "+.inf") {
    return INFINITY;
  }
  if (lower == "-.inf") {
    return -INFINITY;
  }
  if (lower == ".nan") {
    return NAN;
  }
  return std::strtod(s.c_str(), nullptr);
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

bool IsFloatText(std::string_view s) {
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" || s == "+.INF" ||
      s == "-.inf" || s == "-.Inf" || s == "-.INF" || s == ".nan" || s == ".NaN" || s == ".NAN") {
    return true;
  }
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    ++i;
  }
  size_t int_digits = 0;
  while (i < s.size() && IsDigit(s[i])) {
    ++i;
    ++int_digits;
  }
  size_t frac_digits = 0;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && IsDigit(s[i])) {
      ++i;
      ++frac_digits;
    }
  }
  if (int_digits + frac_digits == 0) {
    return false;
  }
  bool exponent = false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    exponent = true;
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    size_t exp_digits = 0;
    while (i < s.size() && IsDigit(s[i])) {
      ++i;
      ++exp_digits;
    }
    if (exp_digits == 0) {
      return false;
    }
  }
  return i == s.size() && (dot || exponent);
}

bool IsIntText(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (i >= s.size()) {
    return false;
  }
  if (s.size() > i + 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    return std::all_of(s.begin() + i + 2, s.end(),
                       [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  }
  if (s.size() > i + 2 && s[i] == '0' && (s[i + 1] == 'o' || s[i + 1] == 'O')) {
    return std::all_of(s.begin() + i + 2, s.end(), [](char c) { return c >= '0' && c <= '7'; });
  }
  return std::all_of(s.begin() + i, s.end(), IsDigit);
}

}  // namespace

ValueKind ResolvePlainScalar(std::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    return ValueKind::kNull;
  }
  if (s == "true" || s == "True" || s == "TRUE" || s == "false" || s == "False" || s == "FALSE") {
    return ValueKind::kBool;
  }
  if (IsIntText(s)) {
    return ValueKind::kInt;
  }
  if (IsFloatText(s)) {
    return ValueKind::kFloat;
  }
  return ValueKind::kString;
}

bool Value::IsZeroScalar() const {
  switch (kind) {
    case ValueKind::kNull:
      return true;
    case ValueKind::kString:
      return scalar.empty();
    case ValueKind::kInt: {
      long long v = 1;
      return ParseInt(scalar, &v) && v == 0;
    }
    case ValueKind::kFloat:
      return ParseFloat(scalar) == 0.0;
    default:
      return false;
  }
}

bool Equal(const Value& a, const Value& b) {
  bool a_num = a.kind == ValueKind::kInt || a.kind == ValueKind::kFloat;
  bool b_num = b.kind == ValueKind::kInt || b.kind == ValueKind::kFloat;
  if (a_num && b_num) {
    long long ai = 0;
    long long bi = 0;
    if (a.kind == ValueKind::kInt && b.kind == ValueKind::kInt && ParseInt(a.scalar, &ai) &&
        ParseInt(b.scalar, &bi)) {
      return ai == bi;
    }
    double ad = a.kind == ValueKind::kInt ? (ParseInt(a.scalar, &ai), static_cast<double>(ai))
                                          : ParseFloat(a.scalar);
    double bd = b.kind == ValueKind::kInt ? (ParseInt(b.scalar, &bi), static_cast<double>(bi))
                                          : ParseFloat(b.scalar);
    return ad == bd;
  }
  if (a.kind != b.kind) {
    return false;
  }
  switch (a.kind) {
    case ValueKind::kNull:
      return true;
    case ValueKind::kBool:
    case ValueKind::kString:
      return a.scalar == b.scalar;
    case ValueKind::kSequence:
      if (a.items.size() != b.items.size()) {
        return false;
      }
      for (size_t i = 0; i < a.items.size(); ++i) {
        if (!Equal(a.items[i], b.items[i])) {
          return false;
        }
      }
      return true;
    case ValueKind::kMap:
      if (a.entries.size() != b.entries.size()) {
        return false;
      }
      for (const auto& e : a.entries) {
        const Value* other = b.Find(e.key);
        if (other == nullptr || !Equal(e.value, *other)) {
          return false;
        }
      }
      return true;
    default:
      return false;
  }
}

// ---- parsing ----
//
// libyaml's document loader (C, ~10x faster than yaml-cpp on configs full of
// base64) builds the node graph; we copy it into Values. The loader tags
// every untagged or "!"-tagged scalar as !!str, so a plain scalar with that
// tag is resolved by us; other explicit tags (!!int, !!bool, ...) are kept.

namespace {

constexpr std::string_view kDefaultStrTag = "tag:yaml.org,2002:str";
// Aliases can expand a small file into a huge tree ("billion laughs").
constexpr size_t kMaxNodes = 2'000'000;
constexpr int kMaxDepth = 200;

std::string Where(std::string_view source, const yaml_mark_t& mark) {
  return std::string(source) + ":" + std::to_string(mark.line + 1) + ":" +
         std::to_string(mark.column + 1);
}

class Loader {
 public:
  Loader(yaml_document_t* doc, std::string_view source, size_t& nodes)
      : doc_(doc), source_(source), nodes_(nodes) {}

  Result<Value> Convert(yaml_node_t* node, int depth) {
    if (depth > kMaxDepth || ++nodes_ > kMaxNodes) {
      return Fail(ErrorCode::kInvalid, Where(source_, node->start_mark) +
                                           ": document too large or nested too deeply (aliases?)");
    }
    Value v;
    v.line = static_cast<int>(node->start_mark.line) + 1;
    std::string_view tag = node->tag != nullptr ? reinterpret_cast<const char*>(node->tag) : "";
    switch (node->type) {
      case YAML_SCALAR_NODE: {
        v.scalar.assign(reinterpret_cast<const char*>(node->data.scalar.value),
                        node->data.scalar.length);
        if (tag == kDefaultStrTag) {
          v.plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
          v.kind = v.plain ? ResolvePlainScalar(v.scalar) : ValueKind::kString;
        } else if (tag == "tag:yaml.org,2002:int") {
          v.kind = ValueKind::kInt;
        } else if (tag == "tag:yaml.org,2002:float") {
          v.kind = ValueKind::kFloat;
        } else if (tag == "tag:yaml.org,2002:bool") {
          v.kind = ValueKind::kBool;
        } else if (tag == "tag:yaml.org,2002:null") {
          v.kind = ValueKind::kNull;
        } else {
          v.kind = ValueKind::kString;  // !!binary, custom tags
        }
        if (v.kind == ValueKind::kBool) {
          std::string lower = v.scalar;
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          if (lower != "true" && lower != "false") {
            return Fail(ErrorCode::kInvalid, Where(source_, node->start_mark) + ": \"" + v.scalar +
                                                 "\" is not a boolean");
          }
          v.scalar = lower;
        } else if (v.kind == ValueKind::kNull) {
          v.scalar.clear();
        }
        return v;
      }
      case YAML_SEQUENCE_NODE: {
        v.kind = ValueKind::kSequence;
        auto& items = node->data.sequence.items;
        v.items.reserve(static_cast<size_t>(items.top - items.start));
        for (yaml_node_item_t* it = items.start; it < items.top; ++it) {
          auto child = Convert(yaml_document_get_node(doc_, *it), depth + 1);
          if (!child) {
            return child;
          }
          v.items.push_back(std::move(*child));
        }
        return v;
      }
      case YAML_MAPPING_NODE: {
        v.kind = ValueKind::kMap;
        auto& pairs = node->data.mapping.pairs;
        size_t count = static_cast<size_t>(pairs.top - pairs.start);
        v.entries.reserve(count);
        std::unordered_set<std::string> seen;  // only for big maps
        for (yaml_node_pair_t* p = pairs.start; p < pairs.top; ++p) {
          yaml_node_t* key = yaml_document_get_node(doc_, p->key);
          if (key->type != YAML_SCALAR_NODE) {
            return Fail(ErrorCode::kInvalid,
                        Where(source_, key->start_mark) + ": a map key must be a scalar");
          }
          std::string k(reinterpret_cast<const char*>(key->data.scalar.value),
                        key->data.scalar.length);
          bool duplicate = false;
          if (count > 16) {
            duplicate = !seen.insert(k).second;
          } else {
            duplicate = v.Find(k) != nullptr;
          }
          if (duplicate) {
            return Fail(ErrorCode::kInvalid,
                        Where(source_, key->start_mark) + ": duplicate key \"" + k + "\"");
          }
          auto child = Convert(yaml_document_get_node(doc_, p->value), depth + 1);
          if (!child) {
            return child;
          }
          v.entries.push_back(MapEntry{std::move(k), std::move(*child)});
        }
        return v;
      }
      default:
        v.kind = ValueKind::kNull;
        return v;
    }
  }

 private:
  yaml_document_t* doc_;
  std::string_view source_;
  size_t& nodes_;
};

}  // namespace

namespace {

Value FromJson(const nlohmann::ordered_json& j) {
  Value v;
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::object:
      v.kind = ValueKind::kMap;
      v.entries.reserve(j.size());
      for (const auto& [key, value] : j.items()) {
        v.entries.push_back(MapEntry{key, FromJson(value)});
      }
      break;
    case nlohmann::ordered_json::value_t::array:
      v.kind = ValueKind::kSequence;
      v.items.reserve(j.size());
      for (const auto& item : j) {
        v.items.push_back(FromJson(item));
      }
      break;
    case nlohmann::ordered_json::value_t::string:
      v.kind = ValueKind::kString;
      v.scalar = j.get<std::string>();
      break;
    case nlohmann::ordered_json::value_t::boolean:
      v.kind = ValueKind::kBool;
      v.scalar = j.get<bool>() ? "true" : "false";
      break;
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
      v.kind = ValueKind::kInt;
      v.scalar = JsonText(j);
      break;
    case nlohmann::ordered_json::value_t::number_float:
      v.kind = ValueKind::kFloat;
      v.scalar = JsonText(j);
      break;
    default:
      v.kind = ValueKind::kNull;
  }
  return v;
}

}  // namespace

Result<std::vector<Value>> ParseYamlDocuments(std::string_view text, std::string_view source) {
  // JSON (a JSON patch, typically) is read as JSON: tabs and compact
  // separators that YAML 1.1 parsers trip over are fine there.
  if (size_t first = text.find_first_not_of(" \t\r\n");
      first != std::string_view::npos && (text[first] == '[' || text[first] == '{')) {
    auto json = nlohmann::ordered_json::parse(text.begin(), text.end(), nullptr, false);
    if (!json.is_discarded()) {
      std::vector<Value> docs;
      docs.push_back(FromJson(json));
      if (docs.back().IsNull()) {
        docs.clear();
      }
      return docs;
    }
  }
  yaml_parser_t parser;
  if (yaml_parser_initialize(&parser) == 0) {
    return Fail(ErrorCode::kInternal, std::string(source) + ": cannot initialize the YAML parser");
  }
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());
  std::vector<Value> docs;
  size_t nodes = 0;
  Result<std::vector<Value>> result;
  while (true) {
    yaml_document_t doc;
    if (yaml_parser_load(&parser, &doc) == 0) {
      std::string what = parser.problem != nullptr ? parser.problem : "syntax error";
      if (parser.context != nullptr) {
        what += std::string(" ") + parser.context;
      }
      result =
          Fail(ErrorCode::kInvalid, Where(source, parser.problem_mark) + ": invalid YAML: " + what);
      break;
    }
    yaml_node_t* root = yaml_document_get_root_node(&doc);
    if (root == nullptr) {  // end of the stream
      yaml_document_delete(&doc);
      result = std::move(docs);
      break;
    }
    Loader loader(&doc, source, nodes);
    auto v = loader.Convert(root, 0);
    yaml_document_delete(&doc);
    if (!v) {
      result = std::unexpected(v.error());
      break;
    }
    if (!v->IsNull()) {  // an empty document
      docs.push_back(std::move(*v));
    }
  }
  yaml_parser_delete(&parser);
  return result;
}

// ---- emitting ----

namespace {

// 0b101, or base-60 numbers like 1:30 or -2:05:10.5 (YAML 1.1 only).
bool IsSexagesimalOrBinary(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (s.size() > i + 2 && s[i] == '0' && s[i + 1] == 'b') {
    return std::all_of(s.begin() + i + 2, s.end(), [](char c) { return c == '0' || c == '1'; });
  }
  if (i >= s.size() || !IsDigit(s[i]) || s.find(':') == std::string_view::npos) {
    return false;
  }
  bool fraction = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (fraction) {
        return false;
      }
      fraction = true;
    } else if (!(IsDigit(c) || c == '_' || (c == ':' && !fraction))) {
      return false;
    }
  }
  return s.back() != ':';
}

// Strings a YAML 1.1 reader would not take for strings.
bool LooksLikeYaml11Scalar(std::string_view s) {
  // YAML 1.1 readers (and people) take these for booleans; "<<" is a merge key.
  static const char* const kAmbiguous[] = {"y",  "Y",   "yes", "Yes", "YES", "n",
                                           "N",  "no",  "No",  "NO",  "on",  "On",
                                           "ON", "off", "Off", "OFF", "<<",  "="};
  for (const char* a : kAmbiguous) {
    if (s == a) {
      return true;
    }
  }
  // Strings YAML 1.1 readers would still take for numbers: 1_000, 0b101, 1:30.
  if (s.find('_') != std::string_view::npos) {
    std::string plain(s);
    std::erase(plain, '_');
    if (!plain.empty() && ResolvePlainScalar(plain) != ValueKind::kString) {
      return true;
    }
  }
  return IsSexagesimalOrBinary(s);
}

// Strings that are not valid plain scalars in block context.
bool NeedsQuotesInBlock(std::string_view s) {
  char first = s[0];
  if (std::string_view("?:,[]{}#&*!|>'\"%@`").find(first) != std::string_view::npos) {
    return true;
  }
  if (first == '-' && (s.size() == 1 || s[1] == ' ')) {
    return true;
  }
  if (s.front() == ' ' || s.back() == ' ' || s.back() == ':') {
    return true;
  }
  if (s.find(": ") != std::string_view::npos || s.find(" #") != std::string_view::npos ||
      s.starts_with("---") || s.starts_with("...")) {
    return true;
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      return true;
    }
  }
  return false;
}

// Whether `s` must be quoted to read back as the same string. `was_plain`:
// the source wrote it unquoted, so it stays unquoted even where a YAML 1.1
// reader might see a boolean or number (`wipe: yes` must reach Talos as the
// user wrote it, not as the string "yes").
bool NeedsQuotes(std::string_view s, bool was_plain) {
  if (s.empty()) {
    return true;
  }
  if (ResolvePlainScalar(s) != ValueKind::kString) {
    return true;
  }
  if (!was_plain && LooksLikeYaml11Scalar(s)) {
    return true;
  }
  return NeedsQuotesInBlock(s);
}

void AppendDoubleQuoted(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\0':
        out += "\\0";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void AppendKey(std::string& out, std::string_view key) {
  if (key.find('\n') != std::string_view::npos || NeedsQuotes(key, false)) {
    AppendDoubleQuoted(out, key);
  } else {
    out += key;
  }
}

// A literal block scalar can carry `s` only if no line has a leading space on
// the first line (that would need an indentation indicator), no whitespace-only
// line (it would be read as an empty line) and no control characters.
bool LiteralBlockFits(std::string_view s) {
  if (s.empty() || s[0] == ' ' || s[0] == '\t') {
    return false;
  }
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string_view::npos) {
      end = s.size();
    }
    std::string_view line = s.substr(start, end - start);
    if (!line.empty() && line.find_first_not_of(" \t") == std::string_view::npos) {
      return false;
    }
    for (unsigned char c : line) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) {
        return false;
      }
    }
    start = end + 1;
  }
  return true;
}

// Writes a scalar after "key:" or "-" (which the caller wrote, without a space).
// `indent` is the column where a block scalar's content goes.
void AppendScalar(std::string& out, const Value& v, size_t indent) {
  switch (v.kind) {
    case ValueKind::kNull:
      out += " null\n";
      return;
    case ValueKind::kBool:
    case ValueKind::kInt:
    case ValueKind::kFloat:
      out += ' ';
      out += v.scalar;
      out += '\n';
      return;
    default:
      break;
  }
  std::string_view s = v.scalar;
  if (s.find('\n') != std::string_view::npos) {
    std::string_view body = s;
    // Like Talos's encoder: leading newlines cannot survive a literal block.
    while (!body.empty() && body.front() == '\n') {
      body.remove_prefix(1);
    }
    if (LiteralBlockFits(body)) {
      size_t trailing = 0;
      while (trailing < body.size() && body[body.size() - 1 - trailing] == '\n') {
        ++trailing;
      }
      out += trailing == 0 ? " |-\n" : (trailing == 1 ? " |\n" : " |+\n");
      std::string_view content = body.substr(0, body.size() - trailing);
      size_t start = 0;
      while (start <= content.size()) {
        size_t end = content.find('\n', start);
        if (end == std::string_view::npos) {
          end = content.size();
        }
        std::string_view line = content.substr(start, end - start);
        if (!line.empty()) {
          out.append(indent, ' ');
          out += line;
        }
        out += '\n';
        start = end + 1;
      }
      for (size_t i = 1; i < trailing; ++i) {
        out += '\n';
      }
      return;
    }
  }
  out += ' ';
  if (NeedsQuotes(s, v.plain)) {
    AppendDoubleQuoted(out, s);
  } else {
    out += s;
  }
  out += '\n';
}

constexpr size_t kIndent = 4;

void AppendNode(std::string& out, const Value& v, size_t col, bool first_inline);

// Writes what follows "key:" or "-" for `v`, whose block content goes at `col`.
void AppendChild(std::string& out, const Value& v, size_t col, bool in_sequence) {
  if (v.IsMap() && v.entries.empty()) {
    out += " {}\n";
  } else if (v.IsSequence() && v.items.empty()) {
    out += " []\n";
  } else if (v.IsScalar()) {
    AppendScalar(out, v, col);
  } else if (in_sequence) {
    out += ' ';
    AppendNode(out, v, col, true);
  } else {
    out += '\n';
    AppendNode(out, v, col, false);
  }
}

// Writes a map or sequence whose lines start at column `col`; with
// `first_inline` the first line's indentation was already written.
void AppendNode(std::string& out, const Value& v, size_t col, bool first_inline) {
  bool first = true;
  if (v.IsMap()) {
    for (const auto& e : v.entries) {
      if (!(first && first_inline)) {
        out.append(col, ' ');
      }
      first = false;
      AppendKey(out, e.key);
      out += ':';
      AppendChild(out, e.value, col + kIndent, false);
    }
  } else if (v.IsSequence()) {
    for (const auto& item : v.items) {
      if (!(first && first_inline)) {
        out.append(col, ' ');
      }
      first = false;
      out += '-';
      AppendChild(out, item, col + 2, true);
    }
  }
}

}  // namespace

std::string EmitYaml(const Value& document) {
  std::string out;
  if (document.IsMap() && !document.entries.empty()) {
    AppendNode(out, document, 0, false);
  } else if (document.IsSequence() && !document.items.empty()) {
    AppendNode(out, document, 0, false);
  } else if (document.IsMap()) {
    out = "{}\n";
  } else if (document.IsSequence()) {
    out = "[]\n";
  } else {
    AppendScalar(out, document, 0);
    out.erase(0, 1);  // the scalar writer starts with the space after a key
  }
  return out;
}

std::string EmitYaml(const std::vector<Value>& documents) {
  std::string out;
  for (size_t i = 0; i < documents.size(); ++i) {
    if (i > 0) {
      out += "---\n";
    }
    out += EmitYaml(documents[i]);
  }
  return out;
}

}  // namespace ironboot::talos
