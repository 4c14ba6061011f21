// Fuzzes the answer parsers (compare/compare.h): whole-body and chunked
// parsing of JSON and SSE answers of every API kind, embeddings, and the
// comparison of two parsed answers.
//
// Input: byte 0 picks the API kind and an HTTP status, byte 1 the chunk
// size for the streaming parser; the rest is the body. The two halves of
// the body are also compared with each other when both parse.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "compare/compare.h"

namespace {

namespace compare = understudy::compare;

const compare::CompareOptions& Options() {
  static const compare::CompareOptions* options = [] {
    auto* o = new compare::CompareOptions();
    (void)compare::CompileRefusalPatterns(o);
    return o;
  }();
  return *options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  constexpr compare::ApiKind kKinds[] = {compare::ApiKind::kUnknown, compare::ApiKind::kOpenAiChat,
                                         compare::ApiKind::kOpenAiResponses,
                                         compare::ApiKind::kAnthropicMessages,
                                         compare::ApiKind::kOpenAiEmbeddings};
  const compare::ApiKind kind = kKinds[data[0] % 5];
  const int status = (data[0] & 0x80) ? 500 : 0;
  const size_t chunk = 1 + data[1] % 64;
  std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);

  if (kind == compare::ApiKind::kOpenAiEmbeddings) {
    (void)compare::ParseEmbeddingAnswer(body, status);
    auto half_a = compare::ParseEmbeddingAnswer(body.substr(0, body.size() / 2), status);
    auto half_b = compare::ParseEmbeddingAnswer(body.substr(body.size() / 2), status);
    if (half_a.ok() && half_b.ok()) {
      (void)compare::CompareEmbeddings(*half_a, *half_b, Options());
    }
    return 0;
  }
  absl::StatusOr<compare::ModelAnswer> whole = compare::ParseAnswerFor(kind, body, status);
  compare::AnswerParser parser(kind, status);
  for (size_t i = 0; i < body.size(); i += chunk) parser.Feed(body.substr(i, chunk));
  absl::StatusOr<compare::ModelAnswer> streamed = parser.Finish();
  // Chunking must not change the answer.
  if (whole.ok() != streamed.ok()) __builtin_trap();
  if (whole.ok() && *whole != *streamed) __builtin_trap();

  auto half_a = compare::ParseAnswerFor(kind, body.substr(0, body.size() / 2), status);
  auto half_b = compare::ParseAnswerFor(kind, body.substr(body.size() / 2), status);
  if (half_a.ok() && half_b.ok()) {
    (void)compare::Compare(*half_a, *half_b, Options(), compare::CompareContext());
  }
  if (whole.ok()) (void)compare::Compare(*whole, *whole, Options(), compare::CompareContext());
  return 0;
}
