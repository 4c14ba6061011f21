#include "translate/json_scan.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace understudy::translate::internal {
namespace {

// kPlain[c]: byte c may appear in a JSON string without escaping and is not
// its end (not a quote, a backslash or a control character).
struct PlainTable {
  bool v[256];
  constexpr PlainTable() : v() {
    for (int c = 0; c < 256; ++c) v[c] = c >= 0x20 && c != '"' && c != '\\';
  }
};
constexpr PlainTable kPlain;

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t Hex4(const char* p) {
  return static_cast<uint32_t>(HexValue(p[0]) << 12 | HexValue(p[1]) << 8 | HexValue(p[2]) << 4 |
                               HexValue(p[3]));
}

bool KeyIs(const JsonNode& n, std::string_view key) {
  if (!n.key_escaped) return n.key == key;
  JsonNode as_string;
  as_string.kind = JsonKind::kString;
  as_string.escaped = true;
  as_string.text = n.key;
  return DecodeString(as_string) == key;
}

}  // namespace

absl::Status JsonScan::Parse(std::string_view json) {
  nodes_.clear();
  begin_ = p_ = json.data();
  end_ = p_ + json.size();
  error_at_ = nullptr;
  SkipSpace();
  bool ok = ParseValue(0);
  if (ok) {
    SkipSpace();
    if (p_ != end_) {
      error_at_ = p_;
      error_what_ = "unexpected text after the JSON value";
      ok = false;
    }
  }
  if (ok) return absl::OkStatus();
  nodes_.clear();
  nodes_.emplace_back();  // root() stays valid (a null) after a failure
  return absl::InvalidArgumentError(
      absl::StrCat("invalid JSON at byte ", error_at_ - begin_, ": ", error_what_));
}

uint32_t JsonScan::NewNode(JsonKind kind) {
  nodes_.emplace_back();
  nodes_.back().kind = kind;
  return static_cast<uint32_t>(nodes_.size() - 1);
}

void JsonScan::SkipSpace() {
  while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
}

bool JsonScan::Literal(std::string_view word) {
  if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
    error_at_ = p_;
    error_what_ = "unexpected character";
    return false;
  }
  p_ += word.size();
  return true;
}

bool JsonScan::ParseString(std::string_view* contents, bool* escaped) {
  ++p_;  // the opening quote
  const char* start = p_;
  bool esc = false;
  while (true) {
    while (p_ < end_ && kPlain.v[static_cast<unsigned char>(*p_)]) ++p_;
    if (p_ == end_) {
      error_at_ = start - 1;
      error_what_ = "unterminated string";
      return false;
    }
    if (*p_ == '"') {
      *contents = std::string_view(start, p_ - start);
      *escaped = esc;
      ++p_;
      return true;
    }
    if (*p_ != '\\') {
      error_at_ = p_;
      error_what_ = "control character in a string";
      return false;
    }
    esc = true;
    ++p_;
    if (p_ == end_) continue;  // reported as unterminated
    switch (*p_) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        ++p_;
        break;
      case 'u':
        if (end_ - p_ < 5 || !IsHex(p_[1]) || !IsHex(p_[2]) || !IsHex(p_[3]) || !IsHex(p_[4])) {
          error_at_ = p_ - 1;
          error_what_ = "invalid \\u escape";
          return false;
        }
        p_ += 5;
        break;
      default:
        error_at_ = p_ - 1;
        error_what_ = "invalid escape";
        return false;
    }
  }
}

bool JsonScan::ParseNumber() {
  const char* start = p_;
  if (p_ < end_ && *p_ == '-') ++p_;
  if (p_ < end_ && *p_ == '0') {
    ++p_;
  } else if (p_ < end_ && *p_ >= '1' && *p_ <= '9') {
    while (p_ < end_ && IsDigit(*p_)) ++p_;
  } else {
    error_at_ = start;
    error_what_ = "invalid number";
    return false;
  }
  if (p_ < end_ && *p_ == '.') {
    ++p_;
    if (p_ == end_ || !IsDigit(*p_)) {
      error_at_ = start;
      error_what_ = "invalid number";
      return false;
    }
    while (p_ < end_ && IsDigit(*p_)) ++p_;
  }
  if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
    ++p_;
    if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (p_ == end_ || !IsDigit(*p_)) {
      error_at_ = start;
      error_what_ = "invalid number";
      return false;
    }
    while (p_ < end_ && IsDigit(*p_)) ++p_;
  }
  return true;
}

bool JsonScan::ParseValue(int depth) {
  if (p_ == end_) {
    error_at_ = p_;
    error_what_ = "unexpected end of input";
    return false;
  }
  const char* start = p_;
  const char c = *p_;
  if (c == '{' || c == '[') {
    if (depth >= kMaxDepth) {
      error_at_ = p_;
      error_what_ = "nested too deeply";
      return false;
    }
    const bool is_object = c == '{';
    const char close = is_object ? '}' : ']';
    const uint32_t self = NewNode(is_object ? JsonKind::kObject : JsonKind::kArray);
    ++p_;
    SkipSpace();
    if (p_ < end_ && *p_ == close) {
      ++p_;
      nodes_[self].text = std::string_view(start, p_ - start);
      return true;
    }
    uint32_t last = 0;
    while (true) {
      std::string_view key;
      bool key_escaped = false;
      if (is_object) {
        if (p_ == end_ || *p_ != '"') {
          error_at_ = p_;
          error_what_ = "expected a member name";
          return false;
        }
        if (!ParseString(&key, &key_escaped)) return false;
        SkipSpace();
        if (p_ == end_ || *p_ != ':') {
          error_at_ = p_;
          error_what_ = "expected ':'";
          return false;
        }
        ++p_;
        SkipSpace();
      }
      const uint32_t child = static_cast<uint32_t>(nodes_.size());
      if (!ParseValue(depth + 1)) return false;
      nodes_[child].key = key;
      nodes_[child].key_escaped = key_escaped;
      if (last == 0) {
        nodes_[self].child = child;
      } else {
        nodes_[last].next = child;
      }
      last = child;
      SkipSpace();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        SkipSpace();
        continue;
      }
      if (p_ < end_ && *p_ == close) {
        ++p_;
        break;
      }
      error_at_ = p_;
      error_what_ = is_object ? "expected ',' or '}'" : "expected ',' or ']'";
      return false;
    }
    nodes_[self].text = std::string_view(start, p_ - start);
    return true;
  }
  if (c == '"') {
    const uint32_t self = NewNode(JsonKind::kString);
    std::string_view contents;
    bool escaped = false;
    if (!ParseString(&contents, &escaped)) return false;
    nodes_[self].text = contents;
    nodes_[self].escaped = escaped;
    return true;
  }
  JsonKind kind;
  bool ok;
  if (c == 't') {
    kind = JsonKind::kBool;
    ok = Literal("true");
  } else if (c == 'f') {
    kind = JsonKind::kBool;
    ok = Literal("false");
  } else if (c == 'n') {
    kind = JsonKind::kNull;
    ok = Literal("null");
  } else if (c == '-' || IsDigit(c)) {
    kind = JsonKind::kNumber;
    ok = ParseNumber();
  } else {
    error_at_ = p_;
    error_what_ = "unexpected character";
    return false;
  }
  if (!ok) return false;
  const uint32_t self = NewNode(kind);
  nodes_[self].text = std::string_view(start, p_ - start);
  return true;
}

const JsonNode* JsonScan::Get(const JsonNode* object, std::string_view key) const {
  if (object == nullptr || object->kind != JsonKind::kObject) return nullptr;
  for (uint32_t i = object->child; i != 0; i = nodes_[i].next) {
    if (KeyIs(nodes_[i], key)) return &nodes_[i];
  }
  return nullptr;
}

const JsonNode* JsonScan::First(const JsonNode* container) const {
  if (container == nullptr || container->child == 0) return nullptr;
  return &nodes_[container->child];
}

const JsonNode* JsonScan::Next(const JsonNode* node) const {
  if (node == nullptr || node->next == 0) return nullptr;
  return &nodes_[node->next];
}

bool StringIs(const JsonNode* n, std::string_view s) {
  if (!IsString(n)) return false;
  if (!n->escaped) return n->text == s;
  return DecodeString(*n) == s;
}

std::string DecodeString(const JsonNode& n) {
  if (!n.escaped) return std::string(n.text);
  std::string out;
  out.reserve(n.text.size());
  const char* p = n.text.data();
  const char* end = p + n.text.size();
  while (p < end) {
    if (*p != '\\') {
      out.push_back(*p++);
      continue;
    }
    ++p;  // Parse validated every escape, so the bytes below exist.
    const char e = *p++;
    switch (e) {
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        uint32_t cp = Hex4(p);
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            const uint32_t low = Hex4(p + 2);
            if (low >= 0xDC00 && low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
              p += 6;
            } else {
              cp = 0xFFFD;
            }
          } else {
            cp = 0xFFFD;
          }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          cp = 0xFFFD;
        }
        AppendUtf8(&out, cp);
        break;
      }
      default:  // '"', '\\', '/'
        out.push_back(e);
    }
  }
  return out;
}

std::optional<int64_t> IntegerOf(const JsonNode* n) {
  if (n == nullptr || n->kind != JsonKind::kNumber) return std::nullopt;
  int64_t v = 0;
  const char* first = n->text.data();
  const char* last = first + n->text.size();
  auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec == std::errc() && ptr == last) return v;
  // A fraction or exponent (`12.0`, `1e3`): accept it when it is integral.
  const double d = std::strtod(std::string(n->text).c_str(), nullptr);
  if (!std::isfinite(d) || d != std::floor(d) || d < -9.2e18 || d > 9.2e18) return std::nullopt;
  return static_cast<int64_t>(d);
}

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (kPlain.v[c]) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default: {
        const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(esc, sizeof(esc));
      }
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, ptr - buf);
}

}  // namespace understudy::translate::internal
