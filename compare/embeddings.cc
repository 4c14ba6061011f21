// Parsing of OpenAI embeddings responses (POST /v1/embeddings) into
// EmbeddingAnswer. CompareEmbeddings is in compare.cc, beside Compare.
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "compare/compare.h"
#include "compare/simdjson_util.h"

namespace understudy::compare {

namespace {

using internal::AsArray;
using internal::GetElem;
using internal::GetInt;
using internal::GetStr;
using simdjson::dom::element;

constexpr size_t kMaxErrorBody = 512;

// FiniteFloat narrows `d` to a float; false when the float is not finite
// (NaN or infinity, including doubles beyond float's range).
bool FiniteFloat(double d, float* out) {
  *out = static_cast<float>(d);
  return std::isfinite(*out);
}

// DecodeBase64Floats decodes base64 of little-endian float32 values.
absl::Status DecodeBase64Floats(std::string_view text, const std::string& where,
                                std::vector<float>* out) {
  std::string bytes;
  if (!absl::Base64Unescape(Av(text), &bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": not valid base64"));
  }
  if (bytes.size() % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", bytes.size(), " bytes of base64 are not a whole number of float32 values"));
  }
  out->reserve(bytes.size() / 4);
  for (size_t i = 0; i < bytes.size(); i += 4) {
    // Little-endian on the wire, whatever this machine's order.
    const uint32_t bits = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) |
                          static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                          static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2])) << 16 |
                          static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 3])) << 24;
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    if (!std::isfinite(f)) {
      return absl::InvalidArgumentError(absl::StrCat(where, "[", i / 4, "]: not a finite float32"));
    }
    out->push_back(f);
  }
  return absl::OkStatus();
}

absl::Status ReadEmbedding(const element& embedding, const std::string& where,
                           std::vector<float>* out) {
  if (embedding.is_string()) {
    return DecodeBase64Floats(embedding.get_string().value_unsafe(), where, out);
  }
  if (!embedding.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": must be an array of numbers or a base64 string"));
  }
  size_t j = 0;
  for (element value : AsArray(embedding)) {
    double d;
    float f;
    if (value.get_double().get(d) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(absl::StrCat(where, "[", j, "]: not a number"));
    }
    if (!FiniteFloat(d, &f)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "[", j, "]: not a finite float32 (", d, ")"));
    }
    out->push_back(f);
    ++j;
  }
  return absl::OkStatus();
}

}  // namespace

EmbeddingAnswer EmbeddingAnswer::FromError(std::string type, std::string message) {
  EmbeddingAnswer a;
  a.error = AnswerError{std::move(type), std::move(message)};
  return a;
}

absl::StatusOr<EmbeddingAnswer> ParseEmbeddingAnswer(std::string_view body, int http_status) {
  auto fail = [&](std::string_view message) -> absl::StatusOr<EmbeddingAnswer> {
    if (http_status >= 400) {
      return EmbeddingAnswer::FromError(
          absl::StrCat("http_", http_status),
          body.empty() ? "empty body" : std::string(body.substr(0, kMaxErrorBody)));
    }
    return absl::InvalidArgumentError(Av(message));
  };
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return fail("embeddings response body is empty");
  }
  simdjson::dom::parser parser;
  element root;
  simdjson::error_code ec = parser.parse(body.data(), body.size(), true).get(root);
  if (ec != simdjson::SUCCESS) {
    return fail(
        absl::StrCat("embeddings response body is not valid JSON: ", simdjson::error_message(ec)));
  }
  if (!root.is_object()) return fail("embeddings response body is not a JSON object");
  EmbeddingAnswer a;
  element v;
  if (GetElem(root, "error", &v)) {
    a.error = internal::ReadAnswerError(v);
    return a;
  }
  if (!GetElem(root, "data", &v) || !v.is_array()) {
    return fail("embeddings response has no \"data\" array");
  }
  const simdjson::dom::array data = AsArray(v);
  const size_t n = data.size();
  a.vectors.resize(n);
  std::vector<bool> seen(n, false);
  size_t i = 0;
  for (element item : data) {
    const std::string where = absl::StrCat("data[", i, "]");
    if (!item.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
    }
    size_t index = i;  // without "index", position is order
    if (GetElem(item, "index", &v)) {
      int64_t idx;
      if (v.get_int64().get(idx) != simdjson::SUCCESS || idx < 0 ||
          static_cast<uint64_t>(idx) >= n) {
        return absl::InvalidArgumentError(absl::StrCat(where, ".index: must be an integer in 0..",
                                                       n - 1, ", got ", simdjson::minify(v)));
      }
      index = static_cast<size_t>(idx);
    }
    if (seen[index]) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".index: ", index, " appears more than once"));
    }
    seen[index] = true;
    element embedding;
    if (!GetElem(item, "embedding", &embedding)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".embedding: missing"));
    }
    RETURN_IF_ERROR(ReadEmbedding(embedding, where + ".embedding", &a.vectors[index]));
    ++i;
  }
  a.model = std::string(GetStr(root, "model"));
  if (GetElem(root, "usage", &v)) a.usage.input_tokens = GetInt(v, "prompt_tokens");
  if (http_status >= 400) a.error = AnswerError{absl::StrCat("http_", http_status), ""};
  return a;
}

}  // namespace understudy::compare
