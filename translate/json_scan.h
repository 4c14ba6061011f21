// translate/json_scan.h (internal to translate/)
// A small validating JSON reader for the stream hot path. It checks a whole
// document against RFC 8259 and indexes it into a flat node array that holds
// views into the input, so a text delta's string can be copied to the output
// as it was escaped upstream, without decoding and re-encoding it. One
// JsonScan is reused event after event: Parse keeps the node array's
// capacity, so a steady stream allocates nothing.
//
// The whole answers and requests are translated with nlohmann::json instead;
// this reader exists because the streams are the throughput-bound path.
//
// Thread safety: a JsonScan is used by one thread at a time.
#ifndef UNDERSTUDY_TRANSLATE_JSON_SCAN_H_
#define UNDERSTUDY_TRANSLATE_JSON_SCAN_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace understudy::translate::internal {

enum class JsonKind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

struct JsonNode {
  JsonKind kind = JsonKind::kNull;
  bool escaped = false;      // a string value that holds backslash escapes
  bool key_escaped = false;  // the member name holds backslash escapes
  uint32_t child = 0;        // first element or member; 0 = none (0 is the root)
  uint32_t next = 0;         // next sibling; 0 = none
  std::string_view key;      // member name as written, without quotes
  // A string: its contents as written (still escaped), without the quotes.
  // Any other value: its whole text, e.g. `12`, `true`, `{"a":1}`.
  std::string_view text;
};

class JsonScan {
 public:
  // Parse validates `json` and indexes it; the nodes view `json`, which must
  // outlive every later lookup. InvalidArgument naming the byte offset for
  // anything that is not exactly one JSON value (surrounding whitespace
  // allowed), or for nesting deeper than kMaxDepth.
  [[nodiscard]] absl::Status Parse(std::string_view json);

  static constexpr int kMaxDepth = 128;

  const JsonNode& root() const { return nodes_[0]; }
  // Get returns the member `key` of an object, nullptr when absent or when
  // `object` is not an object (or is null).
  const JsonNode* Get(const JsonNode* object, std::string_view key) const;
  // First and Next walk the elements of an array or the members of an object.
  const JsonNode* First(const JsonNode* container) const;
  const JsonNode* Next(const JsonNode* node) const;

 private:
  bool ParseValue(int depth);
  bool ParseString(std::string_view* contents, bool* escaped);
  bool ParseNumber();
  bool Literal(std::string_view word);
  void SkipSpace();
  uint32_t NewNode(JsonKind kind);

  std::vector<JsonNode> nodes_;
  const char* begin_ = nullptr;
  const char* p_ = nullptr;
  const char* end_ = nullptr;
  const char* error_at_ = nullptr;
  const char* error_what_ = "";
};

// IsString / IsNull / IsNumber test a possibly-null node.
inline bool IsString(const JsonNode* n) { return n != nullptr && n->kind == JsonKind::kString; }
inline bool IsAbsentOrNull(const JsonNode* n) { return n == nullptr || n->kind == JsonKind::kNull; }

// StringIs says whether `n` is a string equal to `s` (escapes decoded).
bool StringIs(const JsonNode* n, std::string_view s);
// DecodeString returns the UTF-8 value of a string node (escapes decoded;
// a lone surrogate becomes U+FFFD).
std::string DecodeString(const JsonNode& n);
// IntegerOf reads a number node holding an integer (`12`, `12.0`, `1e3`);
// nullopt for anything else or out of int64 range.
std::optional<int64_t> IntegerOf(const JsonNode* n);

// AppendJsonString appends `s` as a quoted, escaped JSON string.
void AppendJsonString(std::string* out, std::string_view s);
// AppendRawString appends a string node as it was written: quoted, with its
// original (already valid) escapes.
inline void AppendRawString(std::string* out, const JsonNode& n) {
  out->push_back('"');
  out->append(n.text);
  out->push_back('"');
}
// AppendInt appends a decimal integer.
void AppendInt(std::string* out, int64_t v);

}  // namespace understudy::translate::internal

#endif  // UNDERSTUDY_TRANSLATE_JSON_SCAN_H_
