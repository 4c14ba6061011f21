// The fake model server behaving like the real providers, over real HTTP on
// 127.0.0.1:0: model and key validation, request schemas, Anthropic Messages,
// OpenAI Responses and Embeddings, /v1/models, /healthz, and compressed
// answers (decoded here with zlib, brotli and zstd directly).
#include <brotli/decode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <zlib.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "examples/fake-model/compression.h"
#include "examples/fake-model/fake_model.h"
#include "tests/common/test_util.h"

namespace understudy::fake_model {
namespace {

using Json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kCapitalQuestion[] = "What is the capital of France?";
constexpr char kCapitalAnswer[] =
    "The capital of France is Paris. It has been the capital since 987 and has "
    "about 2.1 million residents.";
constexpr char kWeatherQuestion[] = "What is the weather in Paris?";
constexpr char kVersion[] = "2023-06-01";

Json ChatRequest(const std::string& model, const std::string& question = kCapitalQuestion) {
  return Json{{"model", model},
              {"messages", Json::array({{{"role", "user"}, {"content", question}}})}};
}

Json AnthropicRequest(const std::string& model, const std::string& question = kCapitalQuestion) {
  return Json{{"model", model},
              {"max_tokens", 1024},
              {"messages", Json::array({{{"role", "user"}, {"content", question}}})}};
}

Json ResponsesRequest(const std::string& model, const std::string& input = kCapitalQuestion) {
  return Json{{"model", model}, {"input", input}};
}

// One named SSE event.
struct Event {
  std::string name;
  Json data;
};

// ParseNamedSse parses "event: NAME\ndata: JSON\n\n" blocks; a block in any
// other shape, or whose data is not JSON, fails the test.
std::vector<Event> ParseNamedSse(const std::string& body) {
  std::vector<Event> out;
  EXPECT_TRUE(absl::EndsWith(body, "\n\n")) << body;
  for (absl::string_view block : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    std::vector<absl::string_view> lines = absl::StrSplit(block, '\n');
    if (lines.size() != 2 || !absl::StartsWith(lines[0], "event: ") ||
        !absl::StartsWith(lines[1], "data: ")) {
      ADD_FAILURE() << "malformed SSE block: " << block;
      continue;
    }
    Event e;
    e.name = std::string(lines[0].substr(7));
    e.data = Json::parse(lines[1].substr(6), nullptr, false);
    EXPECT_FALSE(e.data.is_discarded()) << block;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> Names(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(e.name);
  return out;
}

// Decoders, straight on the libraries.
std::string Gunzip(const std::string& data) {
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::string out;
  char buffer[4096];
  int rc = Z_OK;
  do {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof(buffer);
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buffer, sizeof(buffer) - z.avail_out);
  } while (rc == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
  EXPECT_EQ(rc, Z_STREAM_END) << "gzip stream not complete";
  inflateEnd(&z);
  return out;
}

std::string Unbrotli(const std::string& data) {
  BrotliDecoderState* s = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  size_t avail_in = data.size();
  const uint8_t* next_in = reinterpret_cast<const uint8_t*>(data.data());
  std::string out;
  BrotliDecoderResult rc;
  do {
    uint8_t buffer[4096];
    size_t avail_out = sizeof(buffer);
    uint8_t* next_out = buffer;
    rc = BrotliDecoderDecompressStream(s, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    out.append(reinterpret_cast<char*>(buffer), sizeof(buffer) - avail_out);
  } while (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT);
  EXPECT_EQ(rc, BROTLI_DECODER_RESULT_SUCCESS) << "brotli stream not complete";
  BrotliDecoderDestroyInstance(s);
  return out;
}

std::string Unzstd(const std::string& data) {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  std::string out;
  size_t rc = 1;
  std::vector<char> buffer(ZSTD_DStreamOutSize());
  while (in.pos < in.size || rc != 0) {
    ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
    rc = ZSTD_decompressStream(d, &o, &in);
    if (ZSTD_isError(rc)) {
      ADD_FAILURE() << ZSTD_getErrorName(rc);
      break;
    }
    out.append(buffer.data(), o.pos);
    if (o.pos == 0 && in.pos == in.size) break;
  }
  EXPECT_EQ(rc, 0u) << "zstd frame not complete";
  ZSTD_freeDCtx(d);
  return out;
}

// Incremental gunzip: Feed returns everything decodable so far.
class GunzipStream {
 public:
  GunzipStream() { inflateInit2(&z_, 15 + 16); }
  ~GunzipStream() { inflateEnd(&z_); }
  std::string Feed(const std::string& data) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z_.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buffer[4096];
    do {
      z_.next_out = reinterpret_cast<Bytef*>(buffer);
      z_.avail_out = sizeof(buffer);
      int rc = inflate(&z_, Z_SYNC_FLUSH);
      out.append(buffer, sizeof(buffer) - z_.avail_out);
      if (rc == Z_STREAM_END) ended_ = true;
      if (rc != Z_OK) break;
    } while (z_.avail_in > 0 || z_.avail_out == 0);
    return out;
  }
  bool ended() const { return ended_; }

 private:
  z_stream z_{};
  bool ended_ = false;
};

// ChatStreamText summarizes an OpenAI chat stream: the number of data
// lines, the concatenated content deltas, the finish reason, whether it ended
// with [DONE] (ids differ between requests, so bodies are not compared).
std::string ChatStreamText(const std::string& body) {
  int chunks = 0;
  std::string content, finish;
  bool done = false;
  for (absl::string_view block : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (!absl::StartsWith(block, "data: ")) return "malformed";
    ++chunks;
    if (block == "data: [DONE]") {
      done = true;
      continue;
    }
    Json j = Json::parse(block.substr(6), nullptr, false);
    if (j.is_discarded()) return "malformed";
    const Json& choice = j["choices"][0];
    if (choice["delta"].contains("content") && choice["delta"]["content"].is_string())
      content += choice["delta"]["content"].get<std::string>();
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  return absl::StrCat(chunks, "|", content, "|", finish, "|", done);
}

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<float> Floats(const Json& array) {
  std::vector<float> out;
  for (const Json& v : array) out.push_back(v.get<float>());
  return out;
}

class FakeModelApiTest : public ::testing::Test {
 protected:
  void Start(FakeModelOptions options) {
    if (options.corpus_path.empty()) options.corpus_path = FAKE_MODEL_CORPUS;
    server_.reset();
    absl::StatusOr<std::unique_ptr<FakeModelServer>> server = FakeModelServer::Start(options);
    ASSERT_OK(server);
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(30, 0);
    client_->set_decompress(false);  // the tests decode themselves
  }
  // StartNamed serves `model` (so the model check is strict).
  void StartNamed(const std::string& model, ApiMode api = ApiMode::kOpenAi,
                  const std::string& key = "") {
    FakeModelOptions options;
    options.knobs.model = model;
    options.api = api;
    options.api_key = key;
    Start(options);
  }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
    return client_->Post(path.c_str(), headers, body, "application/json");
  }
  httplib::Result Post(const std::string& path, const Json& body,
                       const httplib::Headers& headers = {}) {
    return Post(path, body.dump(), headers);
  }
  httplib::Result Anthropic(const Json& body, const std::string& key = "") {
    httplib::Headers headers = {{"anthropic-version", kVersion}};
    if (!key.empty()) headers.emplace("x-api-key", key);
    return Post("/v1/messages", body, headers);
  }

  std::unique_ptr<FakeModelServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// ------------------------------------------------------------ model ----

// A named server answers 404 model_not_found, in OpenAI's exact error
// schema, for a model it does not serve, on every OpenAI endpoint; its
// aliases are served and answered as the served model.
TEST_F(FakeModelApiTest, UnknownModelGets404InOpenAiSchema) {
  FakeModelOptions options;
  options.knobs.model = "gpt-4o";
  options.accept_models = {"gpt-4o-2024-08-06"};
  Start(options);
  httplib::Result res = Post("/v1/chat/completions", ChatRequest("gpt-5-mini"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body),
            Json::parse(R"({"error":{"message":"The model `gpt-5-mini` does not )"
                        R"(exist or you do not have access to it.","type":)"
                        R"("invalid_request_error","param":null,"code":)"
                        R"("model_not_found"}})"));
  res = Post("/v1/responses", ResponsesRequest("gpt-5-mini"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], "model_not_found");
  res = Post("/v1/embeddings", Json{{"model", "text-embedding-3-small"}, {"input", "hi"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], "model_not_found");

  for (const char* served : {"gpt-4o", "gpt-4o-2024-08-06"}) {
    res = Post("/v1/chat/completions", ChatRequest(served));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << served;
    EXPECT_EQ(Json::parse(res->body)["model"], "gpt-4o");
  }
  EXPECT_EQ(server_->Counters().model_not_found, 3);
  EXPECT_EQ(server_->Counters().served, 2);
}

// Anthropic mode answers an unknown model with not_found_error.
TEST_F(FakeModelApiTest, UnknownModelGets404InAnthropicSchema) {
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic);
  httplib::Result res = Anthropic(AnthropicRequest("claude-opus-4-1"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body),
            Json::parse(R"({"type":"error","error":{"type":"not_found_error",)"
                        R"("message":"model: claude-opus-4-1"}})"));
  res = Anthropic(AnthropicRequest("claude-sonnet-4-5"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

// Strict by default only when the caller named the model: the default name
// serves anything (today's callers), kOff serves anything, kStrict checks
// even the default name.
TEST_F(FakeModelApiTest, ModelCheckIsStrictWhenTheModelIsNamed) {
  Start(FakeModelOptions{});
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("anything"))->status, 200);

  FakeModelOptions off;
  off.knobs.model = "cand-1";
  off.model_check = ModelCheck::kOff;
  Start(off);
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("anything"))->status, 200);

  FakeModelOptions strict;
  strict.model_check = ModelCheck::kStrict;
  Start(strict);
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("anything"))->status, 404);
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest(kDefaultModelName))->status, 200);

  FakeModelOptions alias_only;
  alias_only.accept_models = {"gpt-4o"};  // naming an alias also names
  Start(alias_only);
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("anything"))->status, 404);
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("gpt-4o"))->status, 200);
}

// A model renamed through /control is served under its new name only.
TEST_F(FakeModelApiTest, RenamedModelIsServedUnderTheNewName) {
  StartNamed("cand-1");
  httplib::Result res = Post("/control", std::string(R"({"model":"cand-2"})"));
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("cand-1"))->status, 404);
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("cand-2"))->status, 200);
}

// -------------------------------------------------------------- key ----

// With a key, OpenAI requests need "Authorization: Bearer KEY"; a missing or
// wrong one gets 401 invalid_api_key, on every endpoint, and the key never
// appears in an answer.
TEST_F(FakeModelApiTest, OpenAiKeyIsRequired) {
  const std::string key = "sk-fake-0123456789abcdef";
  StartNamed("gpt-4o", ApiMode::kOpenAi, key);
  std::vector<std::string> bodies;
  const httplib::Headers cases[] = {{},
                                    {{"Authorization", "Bearer sk-wrong"}},
                                    {{"Authorization", "Bearer " + key + "x"}},
                                    {{"Authorization", key}},
                                    {{"Authorization", "Basic " + key}},
                                    {{"x-api-key", key}}};
  for (const httplib::Headers& headers : cases) {
    httplib::Result res = Post("/v1/chat/completions", ChatRequest("gpt-4o"), headers);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    Json j = Json::parse(res->body);
    EXPECT_THAT(j["error"]["message"].get<std::string>(), StartsWith("Incorrect API key provided"));
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_EQ(j["error"]["code"], "invalid_api_key");
    bodies.push_back(res->body);
  }
  for (const char* path : {"/v1/responses", "/v1/embeddings"}) {
    httplib::Result res = Post(path, Json{{"model", "gpt-4o"}, {"input", "hi"}});
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401) << path;
    bodies.push_back(res->body);
  }
  httplib::Result models = client_->Get("/v1/models");
  EXPECT_EQ(models->status, 401);

  const httplib::Headers good = {{"Authorization", "Bearer " + key}};
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("gpt-4o"), good)->status, 200);
  EXPECT_EQ(Post("/v1/responses", ResponsesRequest("gpt-4o"), good)->status, 200);
  EXPECT_EQ(Post("/v1/embeddings", Json{{"model", "gpt-4o"}, {"input", "hi"}}, good)->status, 200);
  EXPECT_EQ(client_->Get("/v1/models", good)->status, 200);
  // The key is in no answer, not even the operator endpoints.
  bodies.push_back(client_->Get("/control")->body);
  bodies.push_back(client_->Get("/stats")->body);
  for (const std::string& body : bodies) EXPECT_THAT(body, ::testing::Not(HasSubstr(key)));
  EXPECT_EQ(server_->Counters().unauthorized, 9);
}

// Anthropic requests need x-api-key (401 authentication_error) and an
// anthropic-version header (400), the version even without a key.
TEST_F(FakeModelApiTest, AnthropicKeyAndVersionAreRequired) {
  const std::string key = "sk-ant-fake-0123456789";
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic, key);
  const Json request = AnthropicRequest("claude-sonnet-4-5");
  const Json unauthorized = Json::parse(
      R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})");
  const httplib::Headers bad_keys[] = {
      {{"anthropic-version", kVersion}},
      {{"anthropic-version", kVersion}, {"x-api-key", "sk-ant-wrong"}},
      {{"anthropic-version", kVersion}, {"Authorization", "Bearer " + key}}};
  for (const httplib::Headers& headers : bad_keys) {
    httplib::Result res = Post("/v1/messages", request, headers);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    EXPECT_EQ(Json::parse(res->body), unauthorized);
    EXPECT_THAT(res->body, ::testing::Not(HasSubstr(key)));
  }
  httplib::Result res = Post("/v1/messages", request, {{"x-api-key", key}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  Json j = Json::parse(res->body);
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_THAT(j["error"]["message"].get<std::string>(), HasSubstr("anthropic-version"));
  EXPECT_EQ(Anthropic(request, key)->status, 200);

  // No key configured: no key check, but the version is still required.
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic);
  EXPECT_EQ(Post("/v1/messages", request)->status, 400);
  EXPECT_EQ(Anthropic(request)->status, 200);
  FakeModelOptions lax;
  lax.api = ApiMode::kAnthropic;
  lax.require_anthropic_version = false;
  Start(lax);
  EXPECT_EQ(Post("/v1/messages", request)->status, 200);
}

// ----------------------------------------------------------- schema ----

void ExpectOpenAi400(const httplib::Result& res, const std::string& what) {
  ASSERT_TRUE(res) << what;
  EXPECT_EQ(res->status, 400) << what << ": " << res->body;
  Json j = Json::parse(res->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << what;
  EXPECT_EQ(j["error"]["type"], "invalid_request_error") << what;
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty()) << what;
  EXPECT_TRUE(j["error"].contains("param")) << what;
  EXPECT_TRUE(j["error"].contains("code")) << what;
}

void ExpectAnthropic400(const httplib::Result& res, const std::string& what) {
  ASSERT_TRUE(res) << what;
  EXPECT_EQ(res->status, 400) << what << ": " << res->body;
  Json j = Json::parse(res->body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << what;
  EXPECT_EQ(j["type"], "error") << what;
  EXPECT_EQ(j["error"]["type"], "invalid_request_error") << what;
  EXPECT_FALSE(j["error"]["message"].get<std::string>().empty()) << what;
  EXPECT_FALSE(j.contains("param")) << what;
}

// Chat needs a model and non-empty messages with valid roles.
TEST_F(FakeModelApiTest, ChatSchemaViolationsGet400) {
  Start(FakeModelOptions{});
  const std::string cases[] = {
      R"({"messages":[{"role":"user","content":"hi"}]})",
      R"({"model":"m"})",
      R"({"model":"m","messages":[]})",
      R"({"model":"m","messages":[{"role":"wizard","content":"hi"}]})",
      R"({"model":"m","messages":[{"content":"hi"}]})",
      R"({"model":"m","messages":[{"role":"user"}]})",
      R"({"model":42,"messages":[{"role":"user","content":"hi"}]})",
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":3})",
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stop":[1]})",
  };
  for (const std::string& body : cases) ExpectOpenAi400(Post("/v1/chat/completions", body), body);
  httplib::Result res = Post("/v1/chat/completions", cases[0]);
  EXPECT_EQ(Json::parse(res->body)["error"]["param"], "model");
}

// Anthropic needs model, an integer max_tokens, and user/assistant messages
// (the system prompt is top-level).
TEST_F(FakeModelApiTest, AnthropicSchemaViolationsGet400) {
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic);
  const std::string cases[] = {
      "{not json",
      R"({"max_tokens":10,"messages":[{"role":"user","content":"hi"}]})",
      R"({"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]})",
      R"({"model":"claude-sonnet-4-5","max_tokens":"10","messages":[{"role":"user","content":"hi"}]})",
      R"({"model":"claude-sonnet-4-5","max_tokens":1.5,"messages":[{"role":"user","content":"hi"}]})",
      R"({"model":"claude-sonnet-4-5","max_tokens":0,"messages":[{"role":"user","content":"hi"}]})",
      R"({"model":"claude-sonnet-4-5","max_tokens":10})",
      R"({"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]})",
      R"({"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]})",
      R"({"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"tool","content":"x"}]})",
      R"({"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":[{"text":"no type"}]}]})",
      R"({"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"temperature":1.5})",
      R"({"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"t"}]})",
  };
  for (const std::string& body : cases)
    ExpectAnthropic400(Post("/v1/messages", body, {{"anthropic-version", kVersion}}), body);
  httplib::Result res = Post("/v1/messages", cases[8], {{"anthropic-version", kVersion}});
  EXPECT_THAT(Json::parse(res->body)["error"]["message"].get<std::string>(),
              HasSubstr("top-level `system` parameter"));
  // A top-level system prompt is fine.
  Json ok = AnthropicRequest("claude-sonnet-4-5");
  ok["system"] = "Be brief.";
  EXPECT_EQ(Anthropic(ok)->status, 200);
}

// Responses needs a model and input; embeddings a model and a valid input.
TEST_F(FakeModelApiTest, ResponsesAndEmbeddingsSchemaViolationsGet400) {
  Start(FakeModelOptions{});
  const std::string responses[] = {
      R"({"input":"hi"})",
      R"({"model":"m"})",
      R"({"model":"m","input":42})",
      R"({"model":"m","input":[{"role":"wizard","content":"hi"}]})",
      R"({"model":"m","input":[{"role":"user"}]})",
      R"({"model":"m","input":"hi","max_output_tokens":5})",
      R"({"model":"m","input":"hi","tools":[{"type":"function"}]})",
  };
  for (const std::string& body : responses) ExpectOpenAi400(Post("/v1/responses", body), body);
  EXPECT_EQ(Json::parse(Post("/v1/responses", responses[1])->body)["error"]["param"], "input");
  const std::string embeddings[] = {
      R"({"input":"hi"})",
      R"({"model":"m"})",
      R"({"model":"m","input":""})",
      R"({"model":"m","input":[]})",
      R"({"model":"m","input":[1.5,2.5]})",
      R"({"model":"m","input":["ok",""]})",
      R"({"model":"m","input":"hi","encoding_format":"hex"})",
      R"({"model":"m","input":"hi","dimensions":0})",
      R"({"model":"m","input":"hi","dimensions":"8"})",
  };
  for (const std::string& body : embeddings) ExpectOpenAi400(Post("/v1/embeddings", body), body);
  EXPECT_EQ(server_->Counters().bad_requests, 7 + 1 + 9);
}

// A lenient schema lets a request without a model (or Anthropic's
// max_tokens) through; it is answered as the served model.
TEST_F(FakeModelApiTest, LenientSchemaAcceptsMissingFields) {
  FakeModelOptions options;
  options.knobs.model = "cand-1";
  options.api = ApiMode::kBoth;
  options.validate_schema = false;
  Start(options);
  httplib::Result res =
      Post("/v1/chat/completions", std::string(R"({"messages":[{"role":"user","content":"hi"}]})"));
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(Json::parse(res->body)["model"], "cand-1");
  res = Post("/v1/messages", std::string(R"({"messages":[{"role":"user","content":"hi"}]})"),
             {{"anthropic-version", kVersion}});
  ASSERT_EQ(res->status, 200) << res->body;
  // The model check still applies to a model that is named.
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("other"))->status, 404);
}

// -------------------------------------------------------- anthropic ----

TEST_F(FakeModelApiTest, AnthropicAnswersWithTheMessagesShape) {
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic);
  Json request = AnthropicRequest("claude-sonnet-4-5");
  request["system"] = Json::array({{{"type", "text"}, {"text", "Be exact."}}});
  httplib::Result res = Anthropic(request);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("application/json"));
  EXPECT_THAT(res->get_header_value("request-id"), StartsWith("req_"));
  Json j = Json::parse(res->body);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_THAT(keys, ::testing::UnorderedElementsAre("id", "type", "role", "model", "content",
                                                    "stop_reason", "stop_sequence", "usage"));
  EXPECT_THAT(j["id"].get<std::string>(), StartsWith("msg_"));
  EXPECT_EQ(j["type"], "message");
  EXPECT_EQ(j["role"], "assistant");
  EXPECT_EQ(j["model"], "claude-sonnet-4-5");
  ASSERT_EQ(j["content"].size(), 1u);
  EXPECT_EQ(j["content"][0], (Json{{"type", "text"}, {"text", kCapitalAnswer}}));
  EXPECT_EQ(j["stop_reason"], "end_turn");
  EXPECT_TRUE(j["stop_sequence"].is_null());
  EXPECT_GT(j["usage"]["input_tokens"].get<int>(), 0);
  EXPECT_GT(j["usage"]["output_tokens"].get<int>(), 0);

  // max_tokens cuts with stop_reason max_tokens; a stop sequence ends the
  // text before it.
  request["max_tokens"] = 5;
  j = Json::parse(Anthropic(request)->body);
  EXPECT_EQ(j["stop_reason"], "max_tokens");
  EXPECT_LE(j["usage"]["output_tokens"].get<int>(), 5);
  request["max_tokens"] = 1024;
  request["stop_sequences"] = {"987"};
  j = Json::parse(Anthropic(request)->body);
  EXPECT_EQ(j["stop_reason"], "stop_sequence");
  EXPECT_EQ(j["stop_sequence"], "987");
  EXPECT_EQ(j["content"][0]["text"],
            "The capital of France is Paris. It has been the capital since ");
}

const Json kAnthropicWeatherTool = {
    {"name", "get_weather"},
    {"description", "Current weather"},
    {"input_schema", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}};

TEST_F(FakeModelApiTest, AnthropicToolUseAndToolResult) {
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic);
  Json request = AnthropicRequest("claude-sonnet-4-5", kWeatherQuestion);
  request["tools"] = Json::array({kAnthropicWeatherTool});
  httplib::Result res = Anthropic(request);
  ASSERT_EQ(res->status, 200) << res->body;
  Json j = Json::parse(res->body);
  EXPECT_EQ(j["stop_reason"], "tool_use");
  ASSERT_EQ(j["content"].size(), 1u);
  const Json& use = j["content"][0];
  EXPECT_EQ(use["type"], "tool_use");
  EXPECT_THAT(use["id"].get<std::string>(), StartsWith("toolu_"));
  EXPECT_EQ(use["name"], "get_weather");
  EXPECT_EQ(use["input"], (Json{{"city", "Paris"}, {"unit", "celsius"}}));

  request["messages"].push_back({{"role", "assistant"}, {"content", Json::array({use})}});
  request["messages"].push_back({{"role", "user"},
                                 {"content", Json::array({{{"type", "tool_result"},
                                                           {"tool_use_id", use["id"]},
                                                           {"content", "18 C, sunny"}}})}});
  j = Json::parse(Anthropic(request)->body);
  EXPECT_EQ(j["stop_reason"], "end_turn");
  EXPECT_THAT(j["content"][0]["text"].get<std::string>(), HasSubstr("18 degrees"));

  request = AnthropicRequest("claude-sonnet-4-5", kWeatherQuestion);
  request["tools"] = Json::array({kAnthropicWeatherTool});
  request["tool_choice"] = {{"type", "none"}};
  EXPECT_EQ(Json::parse(Anthropic(request)->body)["content"][0]["type"], "text");
}

// The stream: message_start, content_block_start, ping, content_block_delta
// (text_delta)..., content_block_stop, message_delta, message_stop, each as
// "event: NAME" with a data object whose type is NAME.
TEST_F(FakeModelApiTest, AnthropicStreamEventsInOrder) {
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic);
  Json request = AnthropicRequest("claude-sonnet-4-5");
  Json expected = Json::parse(Anthropic(request)->body);
  request["stream"] = true;
  httplib::Result res = Anthropic(request);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/event-stream"));
  std::vector<Event> events = ParseNamedSse(res->body);
  ASSERT_GE(events.size(), 8u);
  std::vector<std::string> names = Names(events);
  EXPECT_THAT(std::vector<std::string>(names.begin(), names.begin() + 3),
              ElementsAre("message_start", "content_block_start", "ping"));
  EXPECT_THAT(std::vector<std::string>(names.end() - 3, names.end()),
              ElementsAre("content_block_stop", "message_delta", "message_stop"));
  std::string text;
  for (size_t i = 3; i + 3 < events.size(); ++i) {
    EXPECT_EQ(names[i], "content_block_delta");
    EXPECT_EQ(events[i].data["index"], 0);
    EXPECT_EQ(events[i].data["delta"]["type"], "text_delta");
    text += events[i].data["delta"]["text"].get<std::string>();
  }
  EXPECT_GE(events.size() - 6, 2u);  // several deltas
  for (const Event& e : events) EXPECT_EQ(e.data["type"], e.name);
  EXPECT_EQ(text, expected["content"][0]["text"]);
  const Json& start = events[0].data["message"];
  EXPECT_EQ(start["id"].get<std::string>().substr(0, 4), "msg_");
  EXPECT_EQ(start["model"], "claude-sonnet-4-5");
  EXPECT_TRUE(start["content"].empty());
  EXPECT_TRUE(start["stop_reason"].is_null());
  EXPECT_EQ(start["usage"]["input_tokens"], expected["usage"]["input_tokens"]);
  EXPECT_EQ(events[1].data["content_block"], (Json{{"type", "text"}, {"text", ""}}));
  const Json& delta = events[events.size() - 2].data;
  EXPECT_EQ(delta["delta"]["stop_reason"], "end_turn");
  EXPECT_TRUE(delta["delta"]["stop_sequence"].is_null());
  EXPECT_EQ(delta["usage"]["output_tokens"], expected["usage"]["output_tokens"]);
  EXPECT_EQ(server_->Counters().streamed, 1);
}

// A streamed tool call: a tool_use block whose input arrives as
// input_json_delta pieces.
TEST_F(FakeModelApiTest, AnthropicStreamsToolUseAsInputJsonDeltas) {
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic);
  Json request = AnthropicRequest("claude-sonnet-4-5", kWeatherQuestion);
  request["tools"] = Json::array({kAnthropicWeatherTool});
  request["stream"] = true;
  std::vector<Event> events = ParseNamedSse(Anthropic(request)->body);
  ASSERT_GE(events.size(), 8u);
  const Json& block = events[1].data["content_block"];
  EXPECT_EQ(block["type"], "tool_use");
  EXPECT_EQ(block["name"], "get_weather");
  EXPECT_EQ(block["input"], Json::object());
  std::string partial;
  int pieces = 0;
  for (const Event& e : events) {
    if (e.name != "content_block_delta") continue;
    EXPECT_EQ(e.data["delta"]["type"], "input_json_delta");
    partial += e.data["delta"]["partial_json"].get<std::string>();
    ++pieces;
  }
  EXPECT_GE(pieces, 2);
  EXPECT_EQ(Json::parse(partial), (Json{{"city", "Paris"}, {"unit", "celsius"}}));
  EXPECT_EQ(events[events.size() - 2].data["delta"]["stop_reason"], "tool_use");
}

// Injected errors in Anthropic's schema: 529 overloaded_error, 429
// rate_limit_error with retry-after.
TEST_F(FakeModelApiTest, AnthropicInjectedErrorsUseItsSchema) {
  StartNamed("claude-sonnet-4-5", ApiMode::kAnthropic);
  ASSERT_EQ(Post("/control", std::string(R"({"error_rate":1})"))->status, 200);
  httplib::Result res = Anthropic(AnthropicRequest("claude-sonnet-4-5"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 529);
  Json j = Json::parse(res->body);
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"]["type"], "overloaded_error");
  ASSERT_EQ(Post("/control", std::string(R"({"error_rate":0,"rate_limit_rate":1})"))->status, 200);
  res = Anthropic(AnthropicRequest("claude-sonnet-4-5"));
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(Json::parse(res->body)["error"]["type"], "rate_limit_error");
  EXPECT_EQ(res->get_header_value("retry-after"), "1");
}

// The API mode decides the paths; "both" routes by path.
TEST_F(FakeModelApiTest, ApiModeRoutesByPath) {
  StartNamed("m1", ApiMode::kOpenAi);
  httplib::Result res = Anthropic(AnthropicRequest("m1"));
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], "unknown_url");

  StartNamed("m1", ApiMode::kAnthropic);
  res = Post("/v1/chat/completions", ChatRequest("m1"));
  EXPECT_EQ(res->status, 404);
  Json j = Json::parse(res->body);
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"]["type"], "not_found_error");

  StartNamed("m1", ApiMode::kBoth);
  EXPECT_EQ(Post("/v1/chat/completions", ChatRequest("m1"))->status, 200);
  EXPECT_EQ(Anthropic(AnthropicRequest("m1"))->status, 200);
  EXPECT_EQ(Post("/v1/responses", ResponsesRequest("m1"))->status, 200);
  FakeModelCounters c = server_->Counters();
  EXPECT_EQ(c.chat, 1);
  EXPECT_EQ(c.messages, 1);
  EXPECT_EQ(c.responses, 1);
  EXPECT_EQ(c.requests, 3);
}

// -------------------------------------------------------- responses ----

TEST_F(FakeModelApiTest, ResponsesAnswersWithTheResponseShape) {
  StartNamed("gpt-5-mini");
  Json request = ResponsesRequest("gpt-5-mini");
  request["instructions"] = "Be exact.";
  httplib::Result res = Post("/v1/responses", request);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  Json j = Json::parse(res->body);
  EXPECT_THAT(j["id"].get<std::string>(), StartsWith("resp_"));
  EXPECT_EQ(j["object"], "response");
  EXPECT_TRUE(j["created_at"].is_number_integer());
  EXPECT_EQ(j["status"], "completed");
  EXPECT_EQ(j["model"], "gpt-5-mini");
  EXPECT_EQ(j["instructions"], "Be exact.");
  EXPECT_TRUE(j["error"].is_null());
  ASSERT_EQ(j["output"].size(), 1u);
  const Json& item = j["output"][0];
  EXPECT_EQ(item["type"], "message");
  EXPECT_THAT(item["id"].get<std::string>(), StartsWith("msg_"));
  EXPECT_EQ(item["status"], "completed");
  EXPECT_EQ(item["role"], "assistant");
  ASSERT_EQ(item["content"].size(), 1u);
  EXPECT_EQ(
      item["content"][0],
      (Json{{"type", "output_text"}, {"text", kCapitalAnswer}, {"annotations", Json::array()}}));
  const Json& usage = j["usage"];
  EXPECT_GT(usage["input_tokens"].get<int>(), 0);
  EXPECT_GT(usage["output_tokens"].get<int>(), 0);
  EXPECT_EQ(usage["total_tokens"],
            usage["input_tokens"].get<int>() + usage["output_tokens"].get<int>());

  // Message-list input works too; max_output_tokens ends "incomplete".
  request = Json{
      {"model", "gpt-5-mini"},
      {"input",
       Json::array(
           {{{"role", "developer"}, {"content", "Be exact."}},
            {{"role", "user"},
             {"content", Json::array({{{"type", "input_text"}, {"text", kCapitalQuestion}}})}}})},
      {"max_output_tokens", 16}};
  j = Json::parse(Post("/v1/responses", request)->body);
  EXPECT_EQ(j["status"], "incomplete");
  EXPECT_EQ(j["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(j["output"][0]["status"], "incomplete");
  EXPECT_THAT(kCapitalAnswer, StartsWith(j["output"][0]["content"][0]["text"].get<std::string>()));
}

const Json kResponsesWeatherTool = {
    {"type", "function"},
    {"name", "get_weather"},
    {"parameters", {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}}}};

TEST_F(FakeModelApiTest, ResponsesFunctionCalls) {
  StartNamed("gpt-5-mini");
  Json request = ResponsesRequest("gpt-5-mini", kWeatherQuestion);
  request["tools"] = Json::array({kResponsesWeatherTool});
  Json j = Json::parse(Post("/v1/responses", request)->body);
  ASSERT_EQ(j["output"].size(), 1u);
  const Json& call = j["output"][0];
  EXPECT_EQ(call["type"], "function_call");
  EXPECT_THAT(call["id"].get<std::string>(), StartsWith("fc_"));
  EXPECT_THAT(call["call_id"].get<std::string>(), StartsWith("call_"));
  EXPECT_EQ(call["name"], "get_weather");
  EXPECT_EQ(call["status"], "completed");
  EXPECT_EQ(Json::parse(call["arguments"].get<std::string>()),
            (Json{{"city", "Paris"}, {"unit", "celsius"}}));
  EXPECT_EQ(j["tools"][0]["name"], "get_weather");

  // The function output comes back: a text answer.
  request["input"] = Json::array({{{"role", "user"}, {"content", kWeatherQuestion}},
                                  call,
                                  {{"type", "function_call_output"},
                                   {"call_id", call["call_id"]},
                                   {"output", "{\"temp\":18}"}}});
  j = Json::parse(Post("/v1/responses", request)->body);
  EXPECT_EQ(j["output"][0]["type"], "message");
  EXPECT_THAT(j["output"][0]["content"][0]["text"].get<std::string>(), HasSubstr("18 degrees"));
}

// The Responses stream: named events, each with its type and a
// sequence_number counting from 0; the deltas make the completed text.
TEST_F(FakeModelApiTest, ResponsesStreamEventsInOrder) {
  StartNamed("gpt-5-mini");
  Json request = ResponsesRequest("gpt-5-mini");
  Json expected = Json::parse(Post("/v1/responses", request)->body);
  request["stream"] = true;
  httplib::Result res = Post("/v1/responses", request);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/event-stream"));
  std::vector<Event> events = ParseNamedSse(res->body);
  ASSERT_GE(events.size(), 10u);
  std::vector<std::string> names = Names(events);
  EXPECT_THAT(std::vector<std::string>(names.begin(), names.begin() + 4),
              ElementsAre("response.created", "response.in_progress", "response.output_item.added",
                          "response.content_part.added"));
  EXPECT_THAT(std::vector<std::string>(names.end() - 4, names.end()),
              ElementsAre("response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"));
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].data["type"], names[i]);
    EXPECT_EQ(events[i].data["sequence_number"], static_cast<int>(i));
    if (i >= 4 && i + 4 < events.size()) {
      EXPECT_EQ(names[i], "response.output_text.delta");
      text += events[i].data["delta"].get<std::string>();
    }
  }
  EXPECT_GE(events.size() - 8, 2u);
  const std::string expected_text = expected["output"][0]["content"][0]["text"];
  EXPECT_EQ(text, expected_text);
  EXPECT_EQ(events[0].data["response"]["status"], "in_progress");
  EXPECT_TRUE(events[0].data["response"]["output"].empty());
  EXPECT_EQ(events[events.size() - 4].data["text"], expected_text);
  const Json& done = events.back().data["response"];
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["id"], events[0].data["response"]["id"]);
  EXPECT_EQ(done["output"][0]["content"][0]["text"], expected_text);
  EXPECT_EQ(done["usage"], expected["usage"]);
}

TEST_F(FakeModelApiTest, ResponsesStreamsFunctionCallArguments) {
  StartNamed("gpt-5-mini");
  Json request = ResponsesRequest("gpt-5-mini", kWeatherQuestion);
  request["tools"] = Json::array({kResponsesWeatherTool});
  request["stream"] = true;
  std::vector<Event> events = ParseNamedSse(Post("/v1/responses", request)->body);
  std::string arguments;
  std::vector<std::string> names = Names(events);
  for (const Event& e : events) {
    if (e.name == "response.function_call_arguments.delta")
      arguments += e.data["delta"].get<std::string>();
  }
  EXPECT_EQ(Json::parse(arguments), (Json{{"city", "Paris"}, {"unit", "celsius"}}));
  EXPECT_EQ(names[2], "response.output_item.added");
  EXPECT_EQ(events[2].data["item"]["type"], "function_call");
  EXPECT_THAT(std::vector<std::string>(names.end() - 3, names.end()),
              ElementsAre("response.function_call_arguments.done", "response.output_item.done",
                          "response.completed"));
  EXPECT_EQ(events[events.size() - 3].data["arguments"], arguments);
}

// ------------------------------------------------------- embeddings ----

TEST_F(FakeModelApiTest, EmbeddingsAreDeterministicUnitVectors) {
  StartNamed("text-embedding-3-small");
  Json request = {{"model", "text-embedding-3-small"},
                  {"input", "The capital of France is Paris."}};
  httplib::Result res = Post("/v1/embeddings", request);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  Json j = Json::parse(res->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "text-embedding-3-small");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["object"], "embedding");
  EXPECT_EQ(j["data"][0]["index"], 0);
  std::vector<float> v = Floats(j["data"][0]["embedding"]);
  ASSERT_EQ(v.size(), 256u);  // the default
  EXPECT_NEAR(Dot(v, v), 1.0, 1e-5);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"]);
  // Same input, same vector.
  EXPECT_EQ(Floats(Json::parse(Post("/v1/embeddings", request)->body)["data"][0]["embedding"]), v);

  // Several inputs keep their order; texts sharing words are closer than
  // unrelated ones.
  request["input"] = {"capital of France", "Paris is the capital of France", "banana bread recipe"};
  j = Json::parse(Post("/v1/embeddings", request)->body);
  ASSERT_EQ(j["data"].size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(j["data"][i]["index"], i);
  std::vector<float> a = Floats(j["data"][0]["embedding"]);
  std::vector<float> b = Floats(j["data"][1]["embedding"]);
  std::vector<float> c = Floats(j["data"][2]["embedding"]);
  EXPECT_GT(Dot(a, b), Dot(a, c) + 0.2);
  EXPECT_NE(a, b);

  // Token-id input counts its tokens.
  request["input"] = {1, 2, 3, 4};
  j = Json::parse(Post("/v1/embeddings", request)->body);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 4);
}

// dimensions: the renormalized prefix of the full vector (like OpenAI's
// text-embedding-3); encoding_format base64: the same float32 values,
// little-endian.
TEST_F(FakeModelApiTest, EmbeddingsHonourDimensionsAndBase64) {
  FakeModelOptions options;
  options.knobs.model = "emb-1";
  options.embedding_dim = 128;
  Start(options);
  Json request = {{"model", "emb-1"}, {"input", "hello world"}};
  std::vector<float> full =
      Floats(Json::parse(Post("/v1/embeddings", request)->body)["data"][0]["embedding"]);
  ASSERT_EQ(full.size(), 128u);
  request["dimensions"] = 16;
  std::vector<float> small =
      Floats(Json::parse(Post("/v1/embeddings", request)->body)["data"][0]["embedding"]);
  ASSERT_EQ(small.size(), 16u);
  double norm = 0;
  for (int i = 0; i < 16; ++i) norm += full[i] * full[i];
  norm = std::sqrt(norm);
  for (int i = 0; i < 16; ++i) EXPECT_NEAR(small[i], full[i] / norm, 1e-6);
  request["dimensions"] = 1024;  // longer than the default is fine
  EXPECT_EQ(Json::parse(Post("/v1/embeddings", request)->body)["data"][0]["embedding"].size(),
            1024u);

  request.erase("dimensions");
  request["encoding_format"] = "base64";
  Json j = Json::parse(Post("/v1/embeddings", request)->body);
  ASSERT_TRUE(j["data"][0]["embedding"].is_string());
  std::string bytes;
  ASSERT_TRUE(absl::Base64Unescape(j["data"][0]["embedding"].get<std::string>(), &bytes));
  ASSERT_EQ(bytes.size(), 128u * 4);
  for (size_t i = 0; i < 128; ++i) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b)
      bits |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i * 4 + b])) << (8 * b);
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    EXPECT_EQ(f, full[i]) << i;  // bit for bit
  }
}

// ------------------------------------------------- models and health ----

TEST_F(FakeModelApiTest, ModelsListAndRetrieve) {
  FakeModelOptions options;
  options.knobs.model = "gpt-4o";
  options.accept_models = {"gpt-4o-2024-08-06"};
  options.api = ApiMode::kBoth;
  Start(options);
  httplib::Result res = client_->Get("/v1/models");
  ASSERT_EQ(res->status, 200);
  Json j = Json::parse(res->body);
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][0], (Json{{"id", "gpt-4o"},
                                {"object", "model"},
                                {"created", 1700000000},
                                {"owned_by", "understudy-fake"}}));
  EXPECT_EQ(j["data"][1]["id"], "gpt-4o-2024-08-06");
  res = client_->Get("/v1/models/gpt-4o-2024-08-06");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(Json::parse(res->body)["id"], "gpt-4o-2024-08-06");
  res = client_->Get("/v1/models/gpt-3.5-turbo");
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], "model_not_found");
  // Anthropic's shape when the request is Anthropic's.
  res = client_->Get("/v1/models", {{"anthropic-version", kVersion}});
  ASSERT_EQ(res->status, 200);
  j = Json::parse(res->body);
  EXPECT_EQ(j["data"][0]["type"], "model");
  EXPECT_EQ(j["data"][0]["id"], "gpt-4o");
  EXPECT_EQ(j["has_more"], false);
  EXPECT_EQ(j["first_id"], "gpt-4o");
  res = client_->Get("/v1/models/nope", {{"anthropic-version", kVersion}});
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(Json::parse(res->body)["error"]["type"], "not_found_error");

  res = client_->Get("/healthz");
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(Json::parse(res->body)["status"], "ok");
}

// ------------------------------------------------------ compression ----

TEST(NegotiateCodingTest, HonoursQValuesAndPreferences) {
  EXPECT_EQ(NegotiateCoding("", false), Coding::kIdentity);
  EXPECT_EQ(NegotiateCoding("identity", false), Coding::kIdentity);
  EXPECT_EQ(NegotiateCoding("deflate", false), Coding::kIdentity);
  EXPECT_EQ(NegotiateCoding("gzip", false), Coding::kGzip);
  EXPECT_EQ(NegotiateCoding("gzip, deflate, br, zstd", false), Coding::kBrotli);
  EXPECT_EQ(NegotiateCoding("gzip, deflate, br, zstd", true), Coding::kGzip);
  EXPECT_EQ(NegotiateCoding("br;q=0.5, gzip;q=0.8", false), Coding::kGzip);
  EXPECT_EQ(NegotiateCoding("gzip;q=0, br;q=0, zstd", true), Coding::kZstd);
  EXPECT_EQ(NegotiateCoding("GZIP;Q=0", false), Coding::kIdentity);
  EXPECT_EQ(NegotiateCoding("*", false), Coding::kGzip);
  EXPECT_EQ(NegotiateCoding("br, *;q=0", true), Coding::kBrotli);
}

// With compression on, a JSON answer is compressed whole in the coding the
// client asked for, with Content-Encoding and Vary.
TEST_F(FakeModelApiTest, JsonAnswersAreCompressedWhenAskedAndEnabled) {
  FakeModelOptions options;
  options.knobs.compress = true;
  Start(options);
  const std::string plain =
      Post("/v1/chat/completions", ChatRequest("m"), {{"Accept-Encoding", "identity"}})->body;
  const Json expected = Json::parse(plain);
  struct Case {
    const char* accept;
    const char* coding;
    std::string (*decode)(const std::string&);
  };
  const Case cases[] = {{"gzip", "gzip", Gunzip},
                        {"br", "br", Unbrotli},
                        {"zstd", "zstd", Unzstd},
                        {"gzip;q=0.5, zstd", "zstd", Unzstd}};
  for (const Case& c : cases) {
    httplib::Result res =
        Post("/v1/chat/completions", ChatRequest("m"), {{"Accept-Encoding", c.accept}});
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Encoding"), c.coding) << c.accept;
    EXPECT_EQ(res->get_header_value("Vary"), "Accept-Encoding");
    EXPECT_EQ(res->get_header_value("Content-Length"), std::to_string(res->body.size()));
    Json j = Json::parse(c.decode(res->body), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << c.accept;
    EXPECT_EQ(j["choices"], expected["choices"]) << c.accept;
  }
  // Errors and embeddings are compressed too.
  httplib::Result res =
      Post("/v1/embeddings", Json{{"model", "m"}, {"input", "x"}}, {{"Accept-Encoding", "gzip"}});
  EXPECT_EQ(res->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(Json::parse(Gunzip(res->body))["data"][0]["embedding"].size(), 256u);
  res = Post("/v1/chat/completions", std::string("{}"), {{"Accept-Encoding", "br"}});
  EXPECT_EQ(res->status, 400);
  EXPECT_EQ(Json::parse(Unbrotli(res->body))["error"]["type"], "invalid_request_error");
  EXPECT_GE(server_->Counters().compressed, 6);
}

// Off by default: even a client that accepts every coding gets identity.
TEST_F(FakeModelApiTest, AnswersAreNotCompressedByDefault) {
  Start(FakeModelOptions{});
  for (const char* path : {"/v1/chat/completions", "/v1/responses"}) {
    Json request = std::string(path) == "/v1/responses" ? ResponsesRequest("m") : ChatRequest("m");
    for (bool stream : {false, true}) {
      request["stream"] = stream;
      httplib::Result res = Post(path, request, {{"Accept-Encoding", "gzip, deflate, br, zstd"}});
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 200);
      EXPECT_FALSE(res->has_header("Content-Encoding")) << path << stream;
      if (!stream) {
        EXPECT_TRUE(Json::accept(res->body)) << path;
      }
    }
  }
  EXPECT_EQ(server_->Counters().compressed, 0);
}

// A compressed SSE answer stays a stream: every piece that arrives decodes
// (gzip sync flush) to whole events, and the whole decodes to the same
// events as an uncompressed stream. The /control knob turns it on.
TEST_F(FakeModelApiTest, SseIsCompressedAsAStream) {
  Start(FakeModelOptions{});
  ASSERT_EQ(
      Post("/control", std::string(R"({"compress":true,"ttft_ms":20,"latency_ms":200})"))->status,
      200);
  Json request = ChatRequest("m");
  request["stream"] = true;
  const std::string plain =
      Post("/v1/chat/completions", request, {{"Accept-Encoding", "identity"}})->body;
  ASSERT_THAT(plain, HasSubstr("data: [DONE]"));

  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = request.dump();
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept-Encoding", "gzip, br, zstd");
  GunzipStream gunzip;
  std::string decoded;
  int pieces = 0, whole = 0;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    decoded += gunzip.Feed(std::string(data, len));
    ++pieces;
    if (absl::EndsWith(decoded, "\n\n")) ++whole;
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  ASSERT_TRUE(client_->send(req, res, error));
  EXPECT_EQ(res.get_header_value("Content-Encoding"), "gzip");
  EXPECT_TRUE(gunzip.ended());
  EXPECT_GE(pieces, 3);
  EXPECT_EQ(whole, pieces);  // each piece completed the events in it
  EXPECT_EQ(ChatStreamText(decoded), ChatStreamText(plain));
  EXPECT_THAT(ChatStreamText(plain), HasSubstr(kCapitalAnswer));

  // br and zstd streams decode to the same events.
  for (const char* coding : {"br", "zstd"}) {
    httplib::Result r = Post("/v1/chat/completions", request, {{"Accept-Encoding", coding}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("Content-Encoding"), coding);
    EXPECT_EQ(ChatStreamText(std::string(coding) == "br" ? Unbrotli(r->body) : Unzstd(r->body)),
              ChatStreamText(plain))
        << coding;
  }
  // Anthropic streams too.
  StartNamed("claude", ApiMode::kAnthropic);
  ASSERT_EQ(Post("/control", std::string(R"({"compress":true})"))->status, 200);
  Json anthropic = AnthropicRequest("claude");
  anthropic["stream"] = true;
  httplib::Result r = Post("/v1/messages", anthropic,
                           {{"anthropic-version", kVersion}, {"Accept-Encoding", "gzip"}});
  EXPECT_EQ(r->get_header_value("Content-Encoding"), "gzip");
  std::vector<Event> events = ParseNamedSse(Gunzip(r->body));
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().name, "message_start");
  EXPECT_EQ(events.back().name, "message_stop");
}

// Compressors round-trip larger bodies with several flushes.
TEST(CompressionTest, CompressorsRoundTrip) {
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "data: {\"n\":" + std::to_string(i) + "}\n\n";
  EXPECT_EQ(Gunzip(CompressAll(Coding::kGzip, text)), text);
  EXPECT_EQ(Unbrotli(CompressAll(Coding::kBrotli, text)), text);
  EXPECT_EQ(Unzstd(CompressAll(Coding::kZstd, text)), text);
  EXPECT_EQ(CompressAll(Coding::kIdentity, text), text);
  for (Coding coding : {Coding::kGzip, Coding::kBrotli, Coding::kZstd}) {
    std::unique_ptr<Compressor> c = NewCompressor(coding);
    std::string out;
    for (size_t i = 0; i < text.size(); i += 5000)
      out += c->Write(text.substr(i, 5000), /*flush=*/i % 10000 == 0);
    out += c->Finish();
    const std::string back = coding == Coding::kGzip     ? Gunzip(out)
                             : coding == Coding::kBrotli ? Unbrotli(out)
                                                         : Unzstd(out);
    EXPECT_EQ(back, text) << CodingName(coding);
  }
}

// Silent drift knobs: /control switches system_fingerprint behind the same
// model name, and `shorten` answers about 30% shorter with finish_reason
// still "stop"; a bad value names the knob.
TEST_F(FakeModelApiTest, DriftKnobsSwitchFingerprintAndShortenAnswers) {
  Start(FakeModelOptions{});
  Json before = Json::parse(Post("/v1/chat/completions", ChatRequest("m"))->body);
  const std::string text = before["choices"][0]["message"]["content"].get<std::string>();
  const std::string fp = before["system_fingerprint"].get<std::string>();
  ASSERT_EQ(Post("/control", std::string(R"({"system_fingerprint":"fp_next","shorten":0.3})"))
                ->status,
            200);
  Json after = Json::parse(Post("/v1/chat/completions", ChatRequest("m"))->body);
  EXPECT_NE(fp, "fp_next");
  EXPECT_EQ(after["system_fingerprint"], "fp_next");
  EXPECT_EQ(after["model"], before["model"]);
  const std::string shorter = after["choices"][0]["message"]["content"].get<std::string>();
  EXPECT_EQ(after["choices"][0]["finish_reason"], "stop");
  EXPECT_LE(shorter.size(), text.size() * 0.7 + 1);
  EXPECT_GE(shorter.size(), text.size() * 0.5);
  EXPECT_EQ(text.substr(0, shorter.size()), shorter);
  httplib::Result bad = Post("/control", std::string(R"({"shorten":2})"));
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("shorten"));
}

}  // namespace
}  // namespace understudy::fake_model
