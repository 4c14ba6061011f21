// compare/simdjson_util.h (internal to compare/; other modules use compare.h)
// Lenient readers over simdjson DOM elements, shared by the answer and
// embedding parsers: a missing key or a value of the wrong type reads as
// empty / 0 / false instead of failing, because model answers are read for
// what they say, not validated.
#ifndef UNDERSTUDY_COMPARE_SIMDJSON_UTIL_H_
#define UNDERSTUDY_COMPARE_SIMDJSON_UTIL_H_

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "compare/compare.h"

namespace understudy::compare::internal {

// EmptyArray is a view of a parsed "[]". A default-constructed dom::array
// has no document: iterating it dereferences a null pointer (found by
// fuzz/answer_parser_fuzzer: a Responses stream whose response.output is
// not an array crashed the worker). The document lives for the process and
// is only read, so the view may be shared by every thread.
inline simdjson::dom::array EmptyArray() {
  static const simdjson::dom::array* const empty = [] {
    static simdjson::dom::parser* const parser = new simdjson::dom::parser();
    simdjson::dom::array a;
    if (parser->parse("[]", 2).get_array().get(a) != simdjson::SUCCESS) __builtin_trap();
    return new simdjson::dom::array(a);
  }();
  return *empty;
}

// AsArray returns `e` as an array, or an empty one. Range-for over
// e.get_array().value_unsafe() would bind to a temporary that dies before
// the loop body; this copies the (cheap) view out first.
inline simdjson::dom::array AsArray(const simdjson::dom::element& e) {
  simdjson::dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS) return EmptyArray();
  return a;
}

// GetStr returns the string at `key` of an object, "" when absent or not a
// string.
inline std::string_view GetStr(const simdjson::dom::element& e, const char* key) {
  std::string_view v;
  if (e.is_object() && e[key].get_string().get(v) == simdjson::SUCCESS) return v;
  return {};
}

// GetInt returns the number at `key` as an integer (doubles truncated), 0
// when absent or not a number.
inline int64_t GetInt(const simdjson::dom::element& e, const char* key) {
  if (!e.is_object()) return 0;
  simdjson::dom::element v;
  if (e[key].get(v) != simdjson::SUCCESS) return 0;
  int64_t i;
  if (v.get_int64().get(i) == simdjson::SUCCESS) return i;
  uint64_t u;
  if (v.get_uint64().get(u) == simdjson::SUCCESS) return static_cast<int64_t>(u);
  double d;
  if (v.get_double().get(d) == simdjson::SUCCESS) return static_cast<int64_t>(d);
  return 0;
}

// GetElem sets *out to the value at `key`; false when absent or null.
inline bool GetElem(const simdjson::dom::element& e, const char* key, simdjson::dom::element* out) {
  return e.is_object() && e[key].get(*out) == simdjson::SUCCESS && !out->is_null();
}

// ReadAnswerError reads an error value: a string, or an object with "type"
// (else "code", else "error") and "message".
inline AnswerError ReadAnswerError(const simdjson::dom::element& err) {
  AnswerError e;
  if (err.is_string()) {
    e.type = "error";
    e.message = std::string(err.get_string().value_unsafe());
    return e;
  }
  e.type = std::string(GetStr(err, "type"));
  if (e.type.empty()) e.type = std::string(GetStr(err, "code"));
  if (e.type.empty()) e.type = "error";
  e.message = std::string(GetStr(err, "message"));
  return e;
}

}  // namespace understudy::compare::internal

#endif  // UNDERSTUDY_COMPARE_SIMDJSON_UTIL_H_
