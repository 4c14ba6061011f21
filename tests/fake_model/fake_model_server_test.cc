// End-to-end tests of the fake model server over real HTTP on 127.0.0.1:0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <set>
#include <string>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "examples/fake-model/fake_model.h"
#include "tests/common/test_util.h"

namespace understudy::fake_model {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kCapitalQuestion[] = "What is the capital of France?";
constexpr char kCapitalAnswer[] =
    "The capital of France is Paris. It has been the capital since 987 and has "
    "about 2.1 million residents.";

Json UserRequest(const std::string& question) {
  return Json{
      {"model", "gpt-test"},
      {"messages", Json::array({{{"role", "user"}, {"content", question}}})}};
}

const Json kWeatherTool = {
    {"type", "function"},
    {"function",
     {{"name", "get_weather"},
      {"parameters",
       {{"type", "object"},
        {"properties", {{"city", {{"type", "string"}}}}}}}}}};

// Parsed SSE stream: the JSON events and whether it ended with [DONE].
struct Sse {
  std::vector<Json> events;
  bool done = false;
  bool well_formed = true;
};

Sse ParseSse(const std::string& body) {
  Sse sse;
  for (absl::string_view block :
       absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    if (!absl::StartsWith(block, "data: ")) {
      sse.well_formed = false;
      continue;
    }
    std::string data(block.substr(6));
    if (data == "[DONE]") {
      sse.done = true;
      continue;
    }
    if (sse.done) sse.well_formed = false;  // nothing may follow [DONE]
    Json j = Json::parse(data, nullptr, false);
    if (j.is_discarded()) sse.well_formed = false;
    sse.events.push_back(j);
  }
  return sse;
}

class FakeModelServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(FakeModelKnobs{}); }

  void StartServer(const FakeModelKnobs& knobs,
                   const std::string& api_key = "") {
    FakeModelOptions options;
    options.corpus_path = FAKE_MODEL_CORPUS;
    options.knobs = knobs;
    options.api_key = api_key;
    absl::StatusOr<std::unique_ptr<FakeModelServer>> server =
        FakeModelServer::Start(options);
    ASSERT_OK(server);
    server_ = std::move(*server);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(30, 0);
  }

  httplib::Result Post(const std::string& path, const std::string& body) {
    return client_->Post(path.c_str(), body, "application/json");
  }
  httplib::Result Chat(const Json& request) {
    return Post("/v1/chat/completions", request.dump());
  }

  void SetKnob(const std::string& json) {
    httplib::Result res = Post("/control", json);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
  }

  std::unique_ptr<FakeModelServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// A plain question gets a complete OpenAI chat.completion with the corpus
// answer.
TEST_F(FakeModelServerTest, AnswersWithTheOpenAiJsonShape) {
  httplib::Result res = Chat(UserRequest(kCapitalQuestion));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"),
              HasSubstr("application/json"));
  Json j = Json::parse(res->body);
  EXPECT_THAT(j["id"].get<std::string>(), StartsWith("chatcmpl-"));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["created"].is_number_integer());
  EXPECT_EQ(j["model"], "fake-model-1");
  EXPECT_THAT(j["system_fingerprint"].get<std::string>(), StartsWith("fp_"));
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], kCapitalAnswer);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  const Json& usage = j["usage"];
  EXPECT_GT(usage["prompt_tokens"].get<int>(), 0);
  EXPECT_GT(usage["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(usage["total_tokens"], usage["prompt_tokens"].get<int>() +
                                       usage["completion_tokens"].get<int>());
  EXPECT_EQ(usage["prompt_tokens_details"]["cached_tokens"], 0);
  EXPECT_EQ(server_->Counters().served, 1);
}

// A question outside the corpus gets the fallback answer, not an error.
TEST_F(FakeModelServerTest, UnknownQuestionGetsTheFallbackAnswer) {
  httplib::Result res = Chat(UserRequest("Compose a limerick about quokkas"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_THAT(Json::parse(res->body)["choices"][0]["message"]["content"]
                  .get<std::string>(),
              HasSubstr("not certain"));
}

// Streaming: chunks, deltas over several events, finish chunk, usage chunk,
// [DONE].
TEST_F(FakeModelServerTest, StreamDeltasConcatenateToTheJsonAnswer) {
  Json request = UserRequest(kCapitalQuestion);
  httplib::Result plain = Chat(request);
  ASSERT_TRUE(plain);
  Json expected = Json::parse(plain->body);

  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  httplib::Result res = Chat(request);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"),
              HasSubstr("text/event-stream"));
  Sse sse = ParseSse(res->body);
  EXPECT_TRUE(sse.well_formed);
  EXPECT_TRUE(sse.done);
  ASSERT_GE(sse.events.size(), 5u);
  std::string content;
  int content_chunks = 0;
  std::string finish;
  for (size_t i = 0; i + 1 < sse.events.size(); ++i) {
    const Json& e = sse.events[i];
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    EXPECT_EQ(e["id"], sse.events[0]["id"]);
    EXPECT_TRUE(e["usage"].is_null());
    const Json& choice = e["choices"][0];
    if (i == 0) {
      EXPECT_EQ(choice["delta"]["role"], "assistant");
    }
    if (choice["delta"].contains("content") &&
        !choice["delta"]["content"].get<std::string>().empty()) {
      content += choice["delta"]["content"].get<std::string>();
      ++content_chunks;
    }
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(content, expected["choices"][0]["message"]["content"]);
  EXPECT_GE(content_chunks, 3);
  EXPECT_EQ(finish, "stop");
  const Json& usage_chunk = sse.events.back();
  EXPECT_TRUE(usage_chunk["choices"].empty());
  EXPECT_EQ(usage_chunk["usage"]["completion_tokens"],
            expected["usage"]["completion_tokens"]);
  EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"],
            expected["usage"]["prompt_tokens"]);
  EXPECT_EQ(server_->Counters().streamed, 1);
}

// Without stream_options.include_usage there is no usage chunk and no usage
// field.
TEST_F(FakeModelServerTest, StreamWithoutIncludeUsageHasNoUsageChunk) {
  Json request = UserRequest(kCapitalQuestion);
  request["stream"] = true;
  httplib::Result res = Chat(request);
  ASSERT_TRUE(res);
  Sse sse = ParseSse(res->body);
  ASSERT_TRUE(sse.done);
  for (const Json& e : sse.events) {
    EXPECT_FALSE(e.contains("usage"));
    EXPECT_EQ(e["choices"].size(), 1u);
  }
  EXPECT_EQ(sse.events.back()["choices"][0]["finish_reason"], "stop");
}

// With a matching tool offered, the answer is a tool call, streamed as argument
// deltas.
TEST_F(FakeModelServerTest, ToolCallIsAnsweredAndStreamedAsArgumentDeltas) {
  Json request = UserRequest("What is the weather in Paris?");
  request["tools"] = Json::array({kWeatherTool});
  httplib::Result res = Chat(request);
  ASSERT_TRUE(res);
  Json j = Json::parse(res->body);
  const Json& message = j["choices"][0]["message"];
  EXPECT_TRUE(message["content"].is_null());
  ASSERT_EQ(message["tool_calls"].size(), 1u);
  const Json& call = message["tool_calls"][0];
  EXPECT_THAT(call["id"].get<std::string>(), StartsWith("call_"));
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>()),
            (Json{{"city", "Paris"}, {"unit", "celsius"}}));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");

  request["stream"] = true;
  res = Chat(request);
  ASSERT_TRUE(res);
  Sse sse = ParseSse(res->body);
  ASSERT_TRUE(sse.done);
  std::string arguments;
  int argument_chunks = 0;
  std::string name, finish;
  for (const Json& e : sse.events) {
    const Json& choice = e["choices"][0];
    if (choice["delta"].contains("tool_calls")) {
      const Json& tc = choice["delta"]["tool_calls"][0];
      EXPECT_EQ(tc["index"], 0);
      if (tc.contains("id")) name = tc["function"]["name"];
      std::string piece = tc["function"]["arguments"];
      if (!piece.empty()) ++argument_chunks;
      arguments += piece;
    }
    if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
  }
  EXPECT_EQ(name, "get_weather");
  EXPECT_GE(argument_chunks, 2);
  EXPECT_EQ(arguments, call["function"]["arguments"]);
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(server_->Counters().tool_calls, 2);
}

// After the tool result comes back, the model answers in text; tool_choice
// "none" never calls.
TEST_F(FakeModelServerTest, ToolResultTurnAndToolChoiceNoneGetText) {
  Json request = UserRequest("What is the weather in Paris?");
  request["tools"] = Json::array({kWeatherTool});
  request["messages"].push_back({{"role", "assistant"},
                                 {"content", nullptr},
                                 {"tool_calls", Json::array()}});
  request["messages"].push_back({{"role", "tool"},
                                 {"tool_call_id", "call_1"},
                                 {"content", "{\"temp\":18}"}});
  httplib::Result res = Chat(request);
  ASSERT_TRUE(res);
  Json j = Json::parse(res->body);
  EXPECT_THAT(j["choices"][0]["message"]["content"].get<std::string>(),
              HasSubstr("18 degrees"));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");

  Json none = UserRequest("What is the weather in Paris?");
  none["tools"] = Json::array({kWeatherTool});
  none["tool_choice"] = "none";
  res = Chat(none);
  ASSERT_TRUE(res);
  EXPECT_FALSE(
      Json::parse(res->body)["choices"][0]["message"].contains("tool_calls"));
}

// JSON mode returns the corpus item's JSON, or the text answer wrapped in an
// object.
TEST_F(FakeModelServerTest, JsonModeAnswersWithJson) {
  Json request = UserRequest("How tall is Mount Everest?");
  request["response_format"] = {{"type", "json_object"}};
  httplib::Result res = Chat(request);
  ASSERT_TRUE(res);
  Json content =
      Json::parse(Json::parse(res->body)["choices"][0]["message"]["content"]
                      .get<std::string>());
  EXPECT_EQ(content["height_m"], 8849);

  request = UserRequest("What is the difference between TCP and UDP?");
  request["response_format"] = {{"type", "json_object"}};
  res = Chat(request);
  ASSERT_TRUE(res);
  content =
      Json::parse(Json::parse(res->body)["choices"][0]["message"]["content"]
                      .get<std::string>());
  EXPECT_THAT(content["answer"].get<std::string>(),
              StartsWith("TCP is connection-oriented"));
}

// invalid_json_rate 1 breaks every JSON-mode answer.
TEST_F(FakeModelServerTest, InvalidJsonRateBreaksJsonAnswers) {
  SetKnob(R"({"invalid_json_rate":1})");
  Json request = UserRequest("How tall is Mount Everest?");
  request["response_format"] = {{"type", "json_object"}};
  for (int i = 0; i < 5; ++i) {
    httplib::Result res = Chat(request);
    ASSERT_TRUE(res);
    std::string content =
        Json::parse(res->body)["choices"][0]["message"]["content"];
    EXPECT_FALSE(Json::accept(content)) << content;
  }
  EXPECT_EQ(server_->Counters().invalid_json, 5);
}

// Drift knobs: truncation cuts with finish_reason length; wrong answers and
// paraphrases differ.
TEST_F(FakeModelServerTest, DriftKnobsAlterTheAnswer) {
  SetKnob(R"({"truncation_rate":1})");
  httplib::Result res = Chat(UserRequest(kCapitalQuestion));
  ASSERT_TRUE(res);
  Json j = Json::parse(res->body);
  std::string cut = j["choices"][0]["message"]["content"];
  EXPECT_LT(cut.size(), std::string(kCapitalAnswer).size());
  EXPECT_THAT(kCapitalAnswer, StartsWith(cut));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");

  SetKnob(R"({"truncation_rate":0,"wrong_answer_rate":1})");
  res = Chat(UserRequest(kCapitalQuestion));
  ASSERT_TRUE(res);
  std::string wrong =
      Json::parse(res->body)["choices"][0]["message"]["content"];
  EXPECT_NE(wrong, kCapitalAnswer);
  EXPECT_THAT(res->get_header_value("x-fake-model-events"),
              HasSubstr("wrong_answer"));

  SetKnob(R"({"wrong_answer_rate":0,"paraphrase_rate":1})");
  res = Chat(UserRequest(kCapitalQuestion));
  ASSERT_TRUE(res);
  std::string para = Json::parse(res->body)["choices"][0]["message"]["content"];
  EXPECT_NE(para, kCapitalAnswer);
  EXPECT_THAT(para, HasSubstr("987"));
  EXPECT_THAT(para, HasSubstr("Paris"));

  SetKnob(R"({"paraphrase_rate":0,"refusal_rate":1})");
  res = Chat(UserRequest(kCapitalQuestion));
  ASSERT_TRUE(res);
  EXPECT_THAT(Json::parse(res->body)["choices"][0]["message"]["content"]
                  .get<std::string>(),
              HasSubstr("can't help"));
  FakeModelCounters c = server_->Counters();
  EXPECT_EQ(c.truncated, 1);
  EXPECT_EQ(c.wrong_answers, 1);
  EXPECT_EQ(c.paraphrased, 1);
  EXPECT_EQ(c.refusals, 1);
}

// max_tokens cuts the answer at that many tokens with finish_reason length.
TEST_F(FakeModelServerTest, MaxTokensTruncatesTheAnswer) {
  Json request = UserRequest(kCapitalQuestion);
  request["max_tokens"] = 5;
  httplib::Result res = Chat(request);
  ASSERT_TRUE(res);
  Json j = Json::parse(res->body);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 5);
}

// error_rate 1 always answers 500 in OpenAI's error shape.
TEST_F(FakeModelServerTest, ErrorRateOneAlwaysAnswers500) {
  SetKnob(R"({"error_rate":1})");
  for (int i = 0; i < 10; ++i) {
    httplib::Result res = Chat(UserRequest(kCapitalQuestion));
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 500);
    Json j = Json::parse(res->body);
    EXPECT_EQ(j["error"]["type"], "server_error");
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"].contains("code"));
  }
  EXPECT_EQ(server_->Counters().errors_injected, 10);
  EXPECT_EQ(server_->Counters().served, 0);
}

// failing_user_rate picks whole users (x-user-id): each fails on every
// request or on none, about the rate of users fail, and a second server with
// the same rate and another seed fails the same users (an A/A pair).
TEST_F(FakeModelServerTest, FailingUsersFailEveryTimeAndAlikeOnTwoServers) {
  auto failing = [&](uint64_t seed) {
    FakeModelKnobs knobs;
    knobs.seed = seed;
    knobs.failing_user_rate = 0.2;
    StartServer(knobs);
    std::set<std::string> out;
    for (int u = 0; u < 200; ++u) {
      const std::string user = "user-" + std::to_string(u);
      int fails = 0;
      for (int i = 0; i < 3; ++i) {
        httplib::Result res = client_->Post("/v1/chat/completions", {{"x-user-id", user}},
                                            UserRequest(kCapitalQuestion).dump(),
                                            "application/json");
        EXPECT_TRUE(res);
        if (res && res->status == 500) ++fails;
      }
      EXPECT_TRUE(fails == 0 || fails == 3) << user << " failed " << fails << " of 3";
      if (fails == 3) out.insert(user);
    }
    // Without the header no request is a failing user's.
    httplib::Result anonymous = Chat(UserRequest(kCapitalQuestion));
    EXPECT_TRUE(anonymous && anonymous->status == 200);
    return out;
  };
  std::set<std::string> first = failing(1);
  EXPECT_GE(first.size(), 20u);  // 40 expected of 200
  EXPECT_LE(first.size(), 65u);
  EXPECT_EQ(failing(2), first);
}

// rate_limit_rate 1 answers 429 rate_limit_exceeded with retry-after, also for
// streams.
TEST_F(FakeModelServerTest, RateLimitRateOneAnswers429) {
  SetKnob(R"({"rate_limit_rate":1})");
  Json request = UserRequest(kCapitalQuestion);
  request["stream"] = true;
  httplib::Result res = Chat(request);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_EQ(res->get_header_value("retry-after"), "1");
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], "rate_limit_exceeded");
  EXPECT_EQ(server_->Counters().rate_limited, 1);
}

// The same seed gives the same error sequence; the rate is roughly honoured.
TEST_F(FakeModelServerTest, ErrorInjectionIsDeterministicWithSeed) {
  auto statuses = [&](uint64_t seed) {
    FakeModelKnobs knobs;
    knobs.seed = seed;
    knobs.error_rate = 0.3;
    StartServer(knobs);
    std::vector<int> out;
    for (int i = 0; i < 60; ++i) {
      httplib::Result res = Chat(UserRequest(kCapitalQuestion));
      out.push_back(res ? res->status : -1);
    }
    return out;
  };
  std::vector<int> first = statuses(11);
  std::vector<int> second = statuses(11);
  std::vector<int> other = statuses(12);
  EXPECT_EQ(first, second);
  EXPECT_NE(first, other);
  int errors = std::count(first.begin(), first.end(), 500);
  EXPECT_EQ(errors + std::count(first.begin(), first.end(), 200), 60);
  EXPECT_GE(errors, 6);
  EXPECT_LE(errors, 32);
}

// Malformed request bodies get 400 invalid_request_error with a message.
TEST_F(FakeModelServerTest, MalformedRequestsGet400) {
  for (
      const std::string& body :
      {std::string("{not json"), std::string("[]"), std::string("{}"),
       std::string(R"({"messages":[]})"),
       std::string(R"({"messages":[{"role":"wizard","content":"x"}]})"),
       std::string(
           R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})")}) {
    httplib::Result res = Post("/v1/chat/completions", body);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << body;
    Json j = Json::parse(res->body);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error") << body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  EXPECT_EQ(server_->Counters().bad_requests, 6);
}

// With an API key configured, a missing or wrong bearer token gets 401.
TEST_F(FakeModelServerTest, ApiKeyIsRequiredWhenConfigured) {
  StartServer(FakeModelKnobs{}, "sk-test");
  httplib::Result res = Chat(UserRequest(kCapitalQuestion));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  EXPECT_EQ(Json::parse(res->body)["error"]["code"], "invalid_api_key");
  client_->set_bearer_token_auth("sk-test");
  res = Chat(UserRequest(kCapitalQuestion));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

// /control changes knobs at runtime (a regression injected mid-run) and reset
// restores them.
TEST_F(FakeModelServerTest, ControlEndpointChangesKnobsAtRuntime) {
  httplib::Result res = client_->Get("/control");
  ASSERT_TRUE(res);
  EXPECT_EQ(Json::parse(res->body)["error_rate"], 0.0);
  ASSERT_EQ(Chat(UserRequest(kCapitalQuestion))->status, 200);

  SetKnob(R"({"error_rate":1,"model":"regressed"})");
  EXPECT_EQ(server_->Knobs().error_rate, 1.0);
  EXPECT_EQ(server_->Knobs().model, "regressed");
  EXPECT_EQ(Json::parse(client_->Get("/control")->body)["model"], "regressed");
  EXPECT_EQ(Chat(UserRequest(kCapitalQuestion))->status, 500);

  SetKnob(R"({"reset":true})");
  EXPECT_EQ(server_->Knobs().error_rate, 0.0);
  httplib::Result ok = Chat(UserRequest(kCapitalQuestion));
  ASSERT_EQ(ok->status, 200);
  EXPECT_EQ(Json::parse(ok->body)["model"], "fake-model-1");
  EXPECT_EQ(server_->Counters().control_updates, 2);
}

// Bad /control input gets 400 with a message naming the key, and changes
// nothing.
TEST_F(FakeModelServerTest, BadControlInputGets400AndChangesNothing) {
  for (const std::string& body :
       {std::string("{"), std::string(R"({"error_rate":2})"),
        std::string(R"({"error_rate":"high"})"), std::string(R"({"nope":1})"),
        std::string(R"({"paraphrase_rate":0.5,"latency_ms":-3})"),
        std::string(R"({"reset":"please"})")}) {
    httplib::Result res = Post("/control", body);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << body;
    EXPECT_FALSE(
        Json::parse(res->body)["error"]["message"].get<std::string>().empty())
        << body;
  }
  EXPECT_EQ(KnobsToJson(server_->Knobs()), KnobsToJson(FakeModelKnobs{}));
  httplib::Result res = Post("/control", R"({"error_rate":2})");
  EXPECT_THAT(Json::parse(res->body)["error"]["message"].get<std::string>(),
              HasSubstr("error_rate"));
}

// Health, models and stats endpoints answer JSON.
TEST_F(FakeModelServerTest, HealthModelsAndStatsAnswer) {
  httplib::Result res = client_->Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(Json::parse(res->body)["status"], "ok");
  res = client_->Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(Json::parse(res->body)["data"][0]["id"], "fake-model-1");
  Chat(UserRequest(kCapitalQuestion));
  res = client_->Get("/stats");
  ASSERT_TRUE(res);
  EXPECT_EQ(Json::parse(res->body)["served"], 1);
  res = client_->Get("/nowhere");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  EXPECT_TRUE(Json::parse(res->body).contains("error"));
}

// A repeated prompt reports cached prompt tokens, as providers with prompt
// caching do.
TEST_F(FakeModelServerTest, RepeatedPromptReportsCachedTokens) {
  std::string long_question(400, 'x');
  for (size_t i = 0; i < long_question.size(); i += 5) long_question[i] = ' ';
  ASSERT_TRUE(Chat(UserRequest(long_question)));
  httplib::Result res = Chat(UserRequest(long_question));
  ASSERT_TRUE(res);
  Json usage = Json::parse(res->body)["usage"];
  EXPECT_GT(usage["prompt_tokens_details"]["cached_tokens"].get<int>(), 0);
  EXPECT_LE(usage["prompt_tokens_details"]["cached_tokens"].get<int>(),
            usage["prompt_tokens"].get<int>());
}

// The first stream byte arrives no earlier than the configured TTFT (a lower
// bound only).
TEST_F(FakeModelServerTest, StreamHonoursTimeToFirstToken) {
  SetKnob(R"({"ttft_ms":40,"latency_ms":60})");
  Json request = UserRequest(kCapitalQuestion);
  request["stream"] = true;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = request.dump();
  req.set_header("Content-Type", "application/json");
  const auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration first{}, last{};
  std::string body;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (body.empty()) first = std::chrono::steady_clock::now() - start;
    body.append(data, len);
    last = std::chrono::steady_clock::now() - start;
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  ASSERT_TRUE(client_->send(req, res, error));
  EXPECT_TRUE(ParseSse(body).done);
  EXPECT_GE(first, std::chrono::milliseconds(40));
  EXPECT_GE(last, std::chrono::milliseconds(59));
}

// A hung request never answers; Stop() wakes it and returns.
TEST_F(FakeModelServerTest, HangingRequestIsReleasedByStop) {
  SetKnob(R"({"hang":true})");
  httplib::Result result(nullptr, httplib::Error::Unknown);
  std::thread caller([&] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(60, 0);
    result =
        client.Post("/v1/chat/completions",
                    UserRequest(kCapitalQuestion).dump(), "application/json");
  });
  ASSERT_TRUE(server_->WaitForHangingForTest(1, absl::Seconds(20)));
  EXPECT_EQ(server_->HangingNow(), 1);
  EXPECT_EQ(server_->Counters().served, 0);
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  const auto stop_time = std::chrono::steady_clock::now() - start;
  caller.join();
  EXPECT_LT(stop_time, std::chrono::seconds(
                           5));  // generous: the hang itself would be 60 s
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 503);
  EXPECT_EQ(server_->Counters().hangs, 1);
  server_->Stop();  // idempotent
}

// Clearing the hang knob releases hung requests, which are then answered
// normally.
TEST_F(FakeModelServerTest, ClearingTheHangKnobReleasesHungRequests) {
  FakeModelKnobs knobs = server_->Knobs();
  knobs.hang = true;
  server_->SetKnobs(knobs);
  httplib::Result result(nullptr, httplib::Error::Unknown);
  std::thread caller([&] {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(60, 0);
    result =
        client.Post("/v1/chat/completions",
                    UserRequest(kCapitalQuestion).dump(), "application/json");
  });
  ASSERT_TRUE(server_->WaitForHangingForTest(1, absl::Seconds(20)));
  knobs.hang = false;
  server_->SetKnobs(knobs);
  caller.join();
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(Json::parse(result->body)["choices"][0]["message"]["content"],
            kCapitalAnswer);
}

// Start rejects a bad corpus file and a port it cannot bind.
TEST_F(FakeModelServerTest, StartReportsBadCorpusAndBusyPort) {
  FakeModelOptions options;
  options.corpus_path = "/nonexistent.jsonl";
  EXPECT_THAT(FakeModelServer::Start(options),
              ::understudy::testing::StatusIs(absl::StatusCode::kNotFound,
                                              "nonexistent"));
  options.corpus_path = "";
  options.port = server_->port();
  EXPECT_THAT(FakeModelServer::Start(options),
              ::understudy::testing::StatusIs(absl::StatusCode::kUnavailable,
                                              "cannot bind"));
}

}  // namespace
}  // namespace understudy::fake_model
