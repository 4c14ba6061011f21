// Tests for StreamTranslator (translate/stream.cc): the translated event
// sequences both ways, field by field; the same output however the upstream
// bytes are split; events emitted as soon as they are complete; broken
// streams give errors, never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/common/test_util.h"
#include "tests/translate/translate_test_util.h"
#include "translate/translate.h"

namespace understudy::translate {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::Json;
using ::testing::Not;
using testing::OutEvent;
using testing::ReadSse;
using testing::ReadUpstreamSse;
using ::understudy::testing::StatusIs;

// --- Fixtures: upstream streams as the providers send them -------------------

// Anthropic: text only, with a ping, cache usage and escapes in a delta.
constexpr char kAnthropicText[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,"
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":5,"
    "\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\", \\\"w\\u00f6rld\\\"\\n\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

// Anthropic: one tool call whose input arrives in fragments; CRLF line ends,
// a comment, and one event's JSON over two data lines.
constexpr char kAnthropicTool[] =
    ": stream opened\r\n\r\n"
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_02\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,"
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":300,\"output_tokens\":1}}}\r\n\r\n"
    "event: content_block_start\r\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_01\",\"name\":\"get_weather\",\"input\":{}}}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"\"}}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"city\\\": \\\"Pa\"}}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"ris\\\"}\"}}\r\n\r\n"
    "event: content_block_stop\r\n"
    "data: {\"type\":\"content_block_stop\",\r\n"
    "data: \"index\":0}\r\n\r\n"
    "event: message_delta\r\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":40}}\r\n\r\n"
    "event: message_stop\r\n"
    "data: {\"type\":\"message_stop\"}\r\n\r\n";

// Anthropic: thinking (hidden from OpenAI clients), text, then two tool
// calls; one event's JSON spread over two data lines.
constexpr char kAnthropicTextAndTools[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_03\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-opus-4-1\",\"stop_reason\":null,"
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":90,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
    "\"thinking\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"The user wants weather.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
    "\"signature\":\"EqQBCgIYAhIM\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Let me check \xE2\x98\x80.\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\n"
    "data: \"index\":1}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_a\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_b\",\"name\":\"now\",\"input\":{}}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":77}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

#define OPENAI_CHUNK(delta, finish)                                                  \
  "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1," \
  "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":" delta                  \
  ",\"logprobs\":null,"                                                              \
  "\"finish_reason\":" finish "}],\"usage\":null}"

// OpenAI: text with the usage chunk (include_usage); CRLF and a comment.
constexpr char kOpenAIText[] =
    ": keep-alive\r\n\r\n"
    OPENAI_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null") "\r\n\r\n"
    OPENAI_CHUNK("{\"content\":\"Hello\"}", "null") "\r\n\r\n"
    OPENAI_CHUNK("{\"content\":\", \\\"w\\u00f6rld\\\"\\n\"}", "null") "\r\n\r\n"
    OPENAI_CHUNK("{}", "\"stop\"") "\r\n\r\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,"
    "\"completion_tokens\":15,\"total_tokens\":45,"
    "\"prompt_tokens_details\":{\"cached_tokens\":5}}}\r\n\r\n"
    "data: [DONE]\r\n\r\n";

// OpenAI: two tool calls, arguments in fragments, no usage chunk.
constexpr char kOpenAITools[] =
    OPENAI_CHUNK("{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
                 "\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                 "\"arguments\":\"\"}}]}", "null") "\n\n"
    OPENAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"ci\"}}]}",
                 "null") "\n\n"
    OPENAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\":\\\"Paris\\\"}\"}}]}",
                 "null") "\n\n"
    OPENAI_CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\","
                 "\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]}", "null") "\n\n"
    OPENAI_CHUNK("{}", "\"tool_calls\"") "\n\n"
    "data: [DONE]\n\n";

// OpenAI: text, then a tool call, with usage.
constexpr char kOpenAITextAndTool[] =
    OPENAI_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null") "\n\n"
    OPENAI_CHUNK("{\"content\":\"Let me check.\"}", "null") "\n\n"
    OPENAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_z\",\"type\":\"function\","
                 "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\"}}]}",
                 "null") "\n\n"
    OPENAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Rome\\\"}\"}}]}",
                 "null") "\n\n"
    OPENAI_CHUNK("{}", "\"tool_calls\"") "\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":70,"
    "\"completion_tokens\":12,\"total_tokens\":82}}\n\n"
    "data: [DONE]\n\n";

// --- Readers that check the output's grammar and reassemble the message -----

struct Assembled {
  std::string id, model, text, stop;
  json tools = json::array();  // [{id, name, arguments (parsed)}]
  json usage;
};

// AssembleOpenAI reads chat.completion.chunk events up to [DONE].
Assembled AssembleOpenAI(const std::vector<OutEvent>& events) {
  Assembled a;
  std::vector<std::string> arguments;
  EXPECT_FALSE(events.empty());
  for (size_t i = 0; i < events.size(); ++i) {
    const OutEvent& e = events[i];
    EXPECT_TRUE(e.event.empty());
    if (e.data == "[DONE]") {
      EXPECT_EQ(i + 1, events.size()) << "events after [DONE]";
      break;
    }
    const json& c = e.json;
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    a.id = c["id"];
    a.model = c["model"];
    if (c.contains("usage") && !c["usage"].is_null()) {
      EXPECT_TRUE(c["choices"].empty());
      a.usage = c["usage"];
    }
    for (const json& choice : c["choices"]) {
      EXPECT_EQ(choice["index"], 0);
      const json& delta = choice["delta"];
      if (delta.contains("role")) {
        EXPECT_EQ(i, 0u) << "role after the first chunk";
      }
      if (delta.contains("content") && delta["content"].is_string()) {
        a.text += delta["content"].get<std::string>();
      }
      if (delta.contains("tool_calls")) {
        for (const json& call : delta["tool_calls"]) {
          const size_t index = call["index"];
          if (index == arguments.size()) {
            EXPECT_TRUE(call.contains("id")) << "a new tool call without an id";
            a.tools.push_back({{"id", call["id"]}, {"name", call["function"]["name"]}});
            arguments.emplace_back();
          }
          EXPECT_LT(index, arguments.size());
          if (index < arguments.size() && call["function"].contains("arguments")) {
            arguments[index] += call["function"]["arguments"].get<std::string>();
          }
        }
      }
      if (!choice["finish_reason"].is_null()) a.stop = choice["finish_reason"];
    }
  }
  EXPECT_EQ(events.back().data, "[DONE]");
  for (size_t i = 0; i < arguments.size(); ++i) {
    a.tools[i]["arguments"] = arguments[i].empty() ? json::object() : Json(arguments[i]);
  }
  return a;
}

// AssembleAnthropic reads an Anthropic event sequence and checks its order.
Assembled AssembleAnthropic(const std::vector<OutEvent>& events) {
  Assembled a;
  EXPECT_FALSE(events.empty());
  int open = -1;
  int next = 0;
  std::string partial;
  for (size_t i = 0; i < events.size(); ++i) {
    const OutEvent& e = events[i];
    const json& j = e.json;
    EXPECT_EQ(e.event, j["type"]) << "event name and data type differ";
    if (i == 0) {
      EXPECT_EQ(e.event, "message_start");
    }
    if (e.event == "ping") continue;
    if (e.event == "message_start") {
      EXPECT_EQ(i, 0u);
      a.id = j["message"]["id"];
      a.model = j["message"]["model"];
      EXPECT_EQ(j["message"]["content"], json::array());
    } else if (e.event == "content_block_start") {
      EXPECT_EQ(open, -1);
      EXPECT_EQ(j["index"], next);
      open = next++;
      const json& block = j["content_block"];
      if (block["type"] == "tool_use") {
        a.tools.push_back({{"id", block["id"]}, {"name", block["name"]}});
        partial.clear();
      }
    } else if (e.event == "content_block_delta") {
      EXPECT_EQ(j["index"], open);
      if (j["delta"]["type"] == "text_delta") a.text += j["delta"]["text"].get<std::string>();
      if (j["delta"]["type"] == "input_json_delta") {
        partial += j["delta"]["partial_json"].get<std::string>();
      }
    } else if (e.event == "content_block_stop") {
      EXPECT_EQ(j["index"], open);
      if (!a.tools.empty() && !a.tools.back().contains("arguments")) {
        a.tools.back()["arguments"] = partial.empty() ? json::object() : Json(partial);
      }
      open = -1;
    } else if (e.event == "message_delta") {
      EXPECT_EQ(open, -1);
      a.stop = j["delta"]["stop_reason"];
      a.usage = j["usage"];
    } else if (e.event == "message_stop") {
      EXPECT_EQ(i + 1, events.size());
    } else {
      ADD_FAILURE() << "unexpected event " << e.event;
    }
  }
  EXPECT_EQ(events.back().event, "message_stop");
  return a;
}

// Translate feeds `pieces` and Finish; the status is the first error.
struct Result {
  std::string out;
  absl::Status status;
};

Result Translate(Provider from, Provider to, const StreamOptions& options,
                 const std::vector<std::string_view>& pieces) {
  StreamTranslator t(from, to, options);
  Result r;
  for (std::string_view p : pieces) {
    r.status = t.Feed(p, &r.out);
    if (!r.status.ok()) return r;
  }
  r.status = t.Finish(&r.out);
  return r;
}

struct Direction {
  const char* name;
  const char* fixture;
  Provider from, to;
};

const Direction kFixtures[] = {
    {"anthropic_text", kAnthropicText, Provider::kAnthropicMessages, Provider::kOpenAIChat},
    {"anthropic_tool", kAnthropicTool, Provider::kAnthropicMessages, Provider::kOpenAIChat},
    {"anthropic_text_and_tools", kAnthropicTextAndTools, Provider::kAnthropicMessages,
     Provider::kOpenAIChat},
    {"openai_text", kOpenAIText, Provider::kOpenAIChat, Provider::kAnthropicMessages},
    {"openai_tools", kOpenAITools, Provider::kOpenAIChat, Provider::kAnthropicMessages},
    {"openai_text_and_tool", kOpenAITextAndTool, Provider::kOpenAIChat,
     Provider::kAnthropicMessages},
};

class StreamTest : public ::testing::Test {
 protected:
  StreamTest() {
    options_.include_usage = true;
    options_.created_unix_seconds = 1733000000;
  }
  std::vector<OutEvent> ToOpenAI(std::string_view upstream) {
    Result r = Translate(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_, {upstream});
    EXPECT_OK(r.status);
    return ReadSse(r.out);
  }
  std::vector<OutEvent> ToAnthropic(std::string_view upstream) {
    Result r = Translate(Provider::kOpenAIChat, Provider::kAnthropicMessages, options_, {upstream});
    EXPECT_OK(r.status);
    return ReadSse(r.out);
  }
  StreamOptions options_;
};

// --- Anthropic → OpenAI --------------------------------------------------------

// Text: a role chunk, one chunk per delta, the finish chunk, the usage chunk
// (asked for), [DONE]; every chunk carries id, model, created.
TEST_F(StreamTest, AnthropicTextBecomesOpenAIChunks) {
  options_.client_model = "gpt-4o";
  std::vector<OutEvent> e = ToOpenAI(kAnthropicText);
  ASSERT_EQ(e.size(), 6u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(e[i].json["id"], "msg_01");
    EXPECT_EQ(e[i].json["object"], "chat.completion.chunk");
    EXPECT_EQ(e[i].json["created"], 1733000000);
    EXPECT_EQ(e[i].json["model"], "gpt-4o");
  }
  EXPECT_EQ(e[0].json["choices"][0]["delta"], Json(R"({"role":"assistant","content":""})"));
  EXPECT_TRUE(e[0].json["choices"][0]["finish_reason"].is_null());
  EXPECT_TRUE(e[0].json["usage"].is_null());
  EXPECT_TRUE(e[0].json.contains("usage"));  // null on every chunk when usage was asked for
  EXPECT_EQ(e[1].json["choices"][0]["delta"], Json(R"({"content":"Hello"})"));
  EXPECT_EQ(e[2].json["choices"][0]["delta"]["content"], ", \"w\xC3\xB6rld\"\n");
  EXPECT_EQ(e[3].json["choices"][0]["delta"], json::object());
  EXPECT_EQ(e[3].json["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(e[4].json["choices"], json::array());
  EXPECT_EQ(e[4].json["usage"], Json(R"({"prompt_tokens":30,"completion_tokens":15,
    "total_tokens":45,"prompt_tokens_details":{"cached_tokens":5}})"));
  EXPECT_EQ(e[5].data, "[DONE]");
}

// Without include_usage there is no usage chunk and no usage field.
TEST_F(StreamTest, NoUsageChunkUnlessAsked) {
  options_.include_usage = false;
  std::vector<OutEvent> e = ToOpenAI(kAnthropicText);
  ASSERT_EQ(e.size(), 5u);
  for (size_t i = 0; i < 4; ++i) EXPECT_FALSE(e[i].json.contains("usage"));
  EXPECT_EQ(e[3].json["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(e[4].data, "[DONE]");
  EXPECT_EQ(e[0].json["model"], "claude-sonnet-4-5");  // no client model: the upstream's
}

// A tool call: its start (index, id, name, empty arguments), then argument
// fragments, then finish_reason tool_calls.
TEST_F(StreamTest, AnthropicToolUseBecomesToolCallDeltas) {
  options_.include_usage = false;
  std::vector<OutEvent> e = ToOpenAI(kAnthropicTool);
  ASSERT_EQ(e.size(), 6u);
  EXPECT_EQ(e[1].json["choices"][0]["delta"], Json(R"({"tool_calls":[{"index":0,"id":"toolu_01",
    "type":"function","function":{"name":"get_weather","arguments":""}}]})"));
  EXPECT_EQ(e[2].json["choices"][0]["delta"],
            Json(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": \"Pa"}}]})"));
  EXPECT_EQ(e[3].json["choices"][0]["delta"],
            Json(R"({"tool_calls":[{"index":0,"function":{"arguments":"ris\"}"}}]})"));
  EXPECT_EQ(e[4].json["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(e[5].data, "[DONE]");
}

// Thinking is hidden; text and two tool calls (OpenAI indexes 0 and 1) remain.
TEST_F(StreamTest, AnthropicTextAndToolsReassemble) {
  Assembled a = AssembleOpenAI(ToOpenAI(kAnthropicTextAndTools));
  EXPECT_EQ(a.text, "Let me check \xE2\x98\x80.");
  EXPECT_EQ(a.tools, Json(R"([{"id":"toolu_a","name":"get_weather","arguments":{"city":"Paris"}},
                             {"id":"toolu_b","name":"now","arguments":{}}])"));
  EXPECT_EQ(a.stop, "tool_calls");
  EXPECT_EQ(a.usage, Json(R"({"prompt_tokens":90,"completion_tokens":77,"total_tokens":167})"));
  EXPECT_EQ(a.model, "claude-opus-4-1");
}

// A mid-stream error reaches the OpenAI client in its error shape; no [DONE].
TEST_F(StreamTest, AnthropicErrorEventBecomesOpenAIError) {
  std::string upstream =
      std::string(kAnthropicText)
          .substr(0, std::string(kAnthropicText).find("event: content_block_stop"));
  upstream +=
      "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
      "\"message\":\"Overloaded\"}}\n\n";
  std::vector<OutEvent> e = ToOpenAI(upstream);
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[3].json, Json(R"({"error":{"message":"Overloaded","type":"server_error",
                                          "param":null,"code":null}})"));
}

// An unknown event type (Anthropic may add some) is skipped.
TEST_F(StreamTest, UnknownAnthropicEventsAreSkipped) {
  std::string upstream(kAnthropicText);
  upstream.insert(upstream.find("event: ping"),
                  "event: future_event\ndata: {\"type\":\"future_event\",\"x\":1}\n\n");
  Result with =
      Translate(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_, {upstream});
  Result without =
      Translate(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_, {kAnthropicText});
  EXPECT_OK(with.status);
  EXPECT_EQ(with.out, without.out);
}

// --- OpenAI → Anthropic --------------------------------------------------------

// Text: message_start, one text block with a delta per chunk, the block's
// stop, message_delta with the stop reason and usage, message_stop.
TEST_F(StreamTest, OpenAITextBecomesAnthropicEvents) {
  options_.client_model = "claude-sonnet-4-5";
  std::vector<OutEvent> e = ToAnthropic(kOpenAIText);
  std::vector<std::string> names;
  for (const OutEvent& x : e) names.push_back(x.event);
  EXPECT_THAT(names, ElementsAre("message_start", "content_block_start", "content_block_delta",
                                 "content_block_delta", "content_block_stop", "message_delta",
                                 "message_stop"));
  ASSERT_EQ(e.size(), 7u);
  EXPECT_EQ(e[0].json["message"], Json(R"({"id":"chatcmpl-1","type":"message","role":"assistant",
    "model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,
    "usage":{"input_tokens":0,"output_tokens":0}})"));
  EXPECT_EQ(e[1].json, Json(R"({"type":"content_block_start","index":0,
                                "content_block":{"type":"text","text":""}})"));
  EXPECT_EQ(e[2].json, Json(R"({"type":"content_block_delta","index":0,
                                "delta":{"type":"text_delta","text":"Hello"}})"));
  EXPECT_EQ(e[3].json["delta"]["text"], ", \"w\xC3\xB6rld\"\n");
  EXPECT_EQ(e[4].json, Json(R"({"type":"content_block_stop","index":0})"));
  EXPECT_EQ(e[5].json, Json(R"({"type":"message_delta",
    "delta":{"stop_reason":"end_turn","stop_sequence":null},
    "usage":{"input_tokens":25,"output_tokens":15,"cache_read_input_tokens":5}})"));
  EXPECT_EQ(e[6].json, Json(R"({"type":"message_stop"})"));
}

// Token counts in a stream are clamped like whole answers' (translate/
// internal.h): int64's largest, summed, cannot overflow.
TEST_F(StreamTest, HugeTokenCountsAreClamped) {
  constexpr int64_t kMax = int64_t{1} << 50;
  std::string upstream = kAnthropicText;
  const std::string usage =
      R"("usage":{"input_tokens":25,"cache_read_input_tokens":5,"output_tokens":1})";
  const std::string huge =
      R"("usage":{"input_tokens":9223372036854775807,"cache_read_input_tokens":9.2e18,)"
      R"("cache_creation_input_tokens":9223372036854775807,"output_tokens":1})";
  ASSERT_NE(upstream.find(usage), std::string::npos);
  upstream.replace(upstream.find(usage), usage.size(), huge);
  std::vector<OutEvent> e = ToOpenAI(upstream);
  ASSERT_EQ(e.size(), 6u);
  EXPECT_EQ(e[4].json["usage"]["prompt_tokens"], 3 * kMax) << e[4].data;
  EXPECT_EQ(e[4].json["usage"]["total_tokens"], 3 * kMax + 15) << e[4].data;

  std::string openai = kOpenAIText;
  const std::string counts = R"("prompt_tokens":30,)";
  ASSERT_NE(openai.find(counts), std::string::npos);
  openai.replace(openai.find(counts), counts.size(), R"("prompt_tokens":-9223372036854775807,)");
  e = ToAnthropic(openai);
  ASSERT_EQ(e.size(), 7u);
  EXPECT_EQ(e[5].json["usage"]["input_tokens"], 0) << e[5].data;  // not -2^63 - 5
}

// Two tool calls become two tool_use blocks with input_json_delta fragments.
TEST_F(StreamTest, OpenAIToolCallsBecomeToolUseBlocks) {
  std::vector<OutEvent> e = ToAnthropic(kOpenAITools);
  ASSERT_GE(e.size(), 3u);
  EXPECT_EQ(e[1].json, Json(R"({"type":"content_block_start","index":0,"content_block":
    {"type":"tool_use","id":"call_a","name":"get_weather","input":{}}})"));
  EXPECT_EQ(e[2].json, Json(R"({"type":"content_block_delta","index":0,
    "delta":{"type":"input_json_delta","partial_json":"{\"ci"}})"));
  Assembled a = AssembleAnthropic(e);
  EXPECT_EQ(a.tools, Json(R"([{"id":"call_a","name":"get_weather","arguments":{"city":"Paris"}},
                             {"id":"call_b","name":"now","arguments":{}}])"));
  EXPECT_EQ(a.stop, "tool_use");
  EXPECT_EQ(a.usage, Json(R"({"input_tokens":0,"output_tokens":0})"));  // none was sent
}

// Text then a tool call: a text block, then a tool_use block.
TEST_F(StreamTest, OpenAITextAndToolReassemble) {
  Assembled a = AssembleAnthropic(ToAnthropic(kOpenAITextAndTool));
  EXPECT_EQ(a.text, "Let me check.");
  EXPECT_EQ(a.tools, Json(R"([{"id":"call_z","name":"get_weather","arguments":{"city":"Rome"}}])"));
  EXPECT_EQ(a.stop, "tool_use");
  EXPECT_EQ(a.usage, Json(R"({"input_tokens":70,"output_tokens":12})"));
}

// An OpenAI error chunk becomes an Anthropic error event.
TEST_F(StreamTest, OpenAIErrorChunkBecomesAnthropicError) {
  std::vector<OutEvent> e = ToAnthropic(OPENAI_CHUNK(
      "{\"content\":\"Hi\"}",
      "null") "\n\n"
              "data: {\"error\":{\"message\":\"Rate limit\",\"type\":\"requests\","
              "\"code\":\"rate_limit_exceeded\"}}\n\n");
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[3].event, "error");
  EXPECT_EQ(e[3].json, Json(R"({"type":"error","error":{"type":"rate_limit_error",
                                                         "message":"Rate limit"}})"));
}

// A server that closes after the finish chunk without [DONE] still ends the message.
TEST_F(StreamTest, OpenAIStreamWithoutDoneStillEnds) {
  std::string upstream(kOpenAITools);
  upstream.resize(upstream.find("data: [DONE]"));
  Assembled a = AssembleAnthropic(ToAnthropic(upstream));
  EXPECT_EQ(a.stop, "tool_use");
}

// --- Both ways -------------------------------------------------------------------

// Anthropic → OpenAI → Anthropic keeps text, tool calls, stop reason and usage.
TEST_F(StreamTest, RoundTripsKeepTheMessage) {
  for (const char* fixture : {kAnthropicText, kAnthropicTool, kAnthropicTextAndTools}) {
    Result openai =
        Translate(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_, {fixture});
    ASSERT_OK(openai.status);
    Result back =
        Translate(Provider::kOpenAIChat, Provider::kAnthropicMessages, options_, {openai.out});
    ASSERT_OK(back.status);
    Assembled original = AssembleAnthropic(ReadUpstreamSse(fixture));
    Assembled round = AssembleAnthropic(ReadSse(back.out));
    EXPECT_EQ(round.text, original.text);
    EXPECT_EQ(round.tools, original.tools);
    EXPECT_EQ(round.stop, original.stop);
    EXPECT_EQ(round.usage["output_tokens"], original.usage["output_tokens"]);
  }
  for (const char* fixture : {kOpenAIText, kOpenAITools, kOpenAITextAndTool}) {
    Result anthropic =
        Translate(Provider::kOpenAIChat, Provider::kAnthropicMessages, options_, {fixture});
    ASSERT_OK(anthropic.status);
    Result back =
        Translate(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_, {anthropic.out});
    ASSERT_OK(back.status);
    Assembled original = AssembleOpenAI(ReadUpstreamSse(fixture));
    Assembled round = AssembleOpenAI(ReadSse(back.out));
    EXPECT_EQ(round.text, original.text);
    EXPECT_EQ(round.tools, original.tools);
    EXPECT_EQ(round.stop, original.stop);
  }
}

// Every split of the upstream bytes into two pieces gives exactly the output
// of feeding it whole; so do one byte at a time and many three-way splits
// (all of them for short streams, a dense grid and random ones otherwise).
TEST_F(StreamTest, OutputDoesNotDependOnHowTheInputIsSplit) {
  std::mt19937 rng(42);
  for (const Direction& d : kFixtures) {
    SCOPED_TRACE(d.name);
    const std::string_view s(d.fixture);
    const Result whole = Translate(d.from, d.to, options_, {s});
    ASSERT_OK(whole.status);
    const size_t n = s.size();
    for (size_t i = 0; i <= n; ++i) {
      Result r = Translate(d.from, d.to, options_, {s.substr(0, i), s.substr(i)});
      ASSERT_OK(r.status) << "split at " << i;
      ASSERT_EQ(r.out, whole.out) << "split at " << i;
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < n; ++i) bytes.push_back(s.substr(i, 1));
    Result one = Translate(d.from, d.to, options_, bytes);
    ASSERT_OK(one.status);
    ASSERT_EQ(one.out, whole.out) << "byte at a time";
    auto three = [&](size_t i, size_t j) {
      Result r =
          Translate(d.from, d.to, options_, {s.substr(0, i), s.substr(i, j - i), s.substr(j)});
      ASSERT_OK(r.status) << "splits at " << i << ", " << j;
      ASSERT_EQ(r.out, whole.out) << "splits at " << i << ", " << j;
    };
    const bool all = n <= 400;
    const size_t step_i = all ? 1 : 3;
    const size_t step_j = all ? 1 : 7;
    for (size_t i = 0; i <= n; i += step_i) {
      for (size_t j = i; j <= n; j += step_j) three(i, j);
    }
    for (int k = 0; k < 2000; ++k) {
      size_t i = rng() % (n + 1), j = rng() % (n + 1);
      if (i > j) std::swap(i, j);
      three(i, j);
    }
  }
}

// An event is translated as soon as its blank line arrives, not later: time
// to first token is kept.
TEST_F(StreamTest, EmitsEachEventAsSoonAsItIsComplete) {
  const std::string s(kAnthropicText);
  const size_t hello = s.find("\"Hello\"");
  const size_t end_of_event = s.find("\n\n", hello);  // the line end, then the blank line
  StreamTranslator t(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_);
  std::string out;
  ASSERT_OK(t.Feed(s.substr(0, end_of_event + 1), &out));
  EXPECT_THAT(out, Not(HasSubstr("Hello")));
  ASSERT_OK(t.Feed("\n", &out));
  EXPECT_THAT(out, HasSubstr("{\"content\":\"Hello\"}"));
}

// The same for the other direction, on an OpenAI chunk.
TEST_F(StreamTest, EmitsOpenAIChunksAsSoonAsTheyAreComplete) {
  const std::string s(kOpenAITextAndTool);
  const size_t text = s.find("Let me check.");
  const size_t end_of_event = s.find("\n\n", text);
  StreamTranslator t(Provider::kOpenAIChat, Provider::kAnthropicMessages, options_);
  std::string out;
  ASSERT_OK(t.Feed(s.substr(0, end_of_event + 1), &out));
  EXPECT_THAT(out, Not(HasSubstr("Let me check.")));
  ASSERT_OK(t.Feed("\n", &out));
  EXPECT_THAT(out, HasSubstr("\"text\":\"Let me check.\""));
}

// --- Broken streams ----------------------------------------------------------------

struct BrokenCase {
  const char* name;
  std::string upstream;
  absl::StatusCode code;
  const char* message;
};

std::string Cut(const char* fixture, const char* before) {
  std::string s(fixture);
  return s.substr(0, s.find(before));
}

// Anthropic streams that make no sense are errors naming what is wrong.
TEST_F(StreamTest, BrokenAnthropicStreamsAreErrors) {
  const std::string start = Cut(kAnthropicText, "event: content_block_start");
  const std::string in_text = Cut(kAnthropicText, "event: content_block_stop");
  const BrokenCase kCases[] = {
      {"invalid JSON", start + "data: {\"type\":\"ping\"\n\n", absl::StatusCode::kInvalidArgument,
       "upstream stream: event data: invalid JSON"},
      {"not an object", start + "data: [1]\n\n", absl::StatusCode::kInvalidArgument,
       "not a JSON object"},
      {"delta before start",
       "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
       "\"text\":\"x\"}}\n\n",
       absl::StatusCode::kInvalidArgument, "content_block_delta outside a content block"},
      {"second message_start", start + start, absl::StatusCode::kInvalidArgument,
       "a second message_start"},
      {"wrong block index",
       in_text + "data: {\"type\":\"content_block_delta\",\"index\":4,\"delta\":{\"type\":"
                 "\"text_delta\",\"text\":\"x\"}}\n\n",
       absl::StatusCode::kInvalidArgument, "not open"},
      {"json delta in a text block",
       in_text + "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                 "\"input_json_delta\",\"partial_json\":\"{\"}}\n\n",
       absl::StatusCode::kInvalidArgument, "does not fit the open block"},
      {"block skipped",
       start + "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
               "{\"type\":\"text\",\"text\":\"\"}}\n\n",
       absl::StatusCode::kInvalidArgument, "index 1, expected 0"},
      {"stop without delta", start + "data: {\"type\":\"message_stop\"}\n\n",
       absl::StatusCode::kInvalidArgument, "message_stop without a stop_reason"},
      {"message_stop inside a block", in_text + "data: {\"type\":\"message_stop\"}\n\n",
       absl::StatusCode::kInvalidArgument, "inside an open block"},
      {"event after message_stop",
       std::string(kAnthropicText) +
           "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
           "{\"type\":\"text\",\"text\":\"\"}}\n\n",
       absl::StatusCode::kInvalidArgument, "after the end of the message"},
      {"server tool",
       start +
           "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
           "{\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\",\"input\":{}}}\n\n",
       absl::StatusCode::kFailedPrecondition, "content_block.type: server_tool_use"},
      {"pause_turn",
       start + "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"pause_turn\"}}\n\n"
               "data: {\"type\":\"message_stop\"}\n\n",
       absl::StatusCode::kFailedPrecondition, "stop_reason: pause_turn"},
      {"truncated", in_text, absl::StatusCode::kDataLoss, "ended before message_stop"},
      {"empty", "", absl::StatusCode::kDataLoss, "ended before message_stop"},
  };
  for (const BrokenCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Result r =
        Translate(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_, {c.upstream});
    EXPECT_THAT(r.status, StatusIs(c.code, c.message));
  }
}

// OpenAI streams that make no sense, or carry what Anthropic cannot, are errors.
TEST_F(StreamTest, BrokenOpenAIStreamsAreErrors) {
  const std::string first =
      OPENAI_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null") "\n\n";
  const BrokenCase kCases[] = {
      {"invalid JSON", first + "data: {\"id\":\n\n", absl::StatusCode::kInvalidArgument,
       "invalid JSON"},
      {"done before finish", first + "data: [DONE]\n\n", absl::StatusCode::kInvalidArgument,
       "[DONE] before a finish_reason"},
      {"done first", "data: [DONE]\n\n", absl::StatusCode::kInvalidArgument,
       "[DONE] before any chunk"},
      {"chunk after done", std::string(kOpenAITools) + first, absl::StatusCode::kInvalidArgument,
       "after [DONE]"},
      {"second choice",
       first + "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"x\"}}]}\n\n",
       absl::StatusCode::kFailedPrecondition, "n > 1"},
      {"tool call resumed",
       Cut(kOpenAITools, OPENAI_CHUNK("{}", "\"tool_calls\"")) +
           "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
           "\"function\":{\"arguments\":\"x\"}}]}}]}\n\n",
       absl::StatusCode::kInvalidArgument, "tool call 0 continued"},
      {"tool call without id",
       first + "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
               "\"function\":{\"arguments\":\"x\"}}]}}]}\n\n",
       absl::StatusCode::kInvalidArgument, "starts without id"},
      {"content after finish",
       first +
           OPENAI_CHUNK("{}", "\"stop\"") "\n\n" OPENAI_CHUNK("{\"content\":\"x\"}", "null") "\n\n",
       absl::StatusCode::kInvalidArgument, "content after finish_reason"},
      {"unknown finish", first + OPENAI_CHUNK("{}", "\"weird\"") "\n\n",
       absl::StatusCode::kFailedPrecondition, "finish_reason: weird"},
      {"truncated", first + OPENAI_CHUNK("{\"content\":\"x\"}", "null") "\n\n",
       absl::StatusCode::kDataLoss, "ended before its finish_reason"},
  };
  for (const BrokenCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Result r =
        Translate(Provider::kOpenAIChat, Provider::kAnthropicMessages, options_, {c.upstream});
    EXPECT_THAT(r.status, StatusIs(c.code, c.message));
  }
}

// Every prefix of a stream that stops before its last event fails at Finish
// (a cut in the middle of an event is invalid JSON, a cut between events is
// a missing end), whichever direction.
TEST_F(StreamTest, EveryTruncationBeforeTheEndIsAnError) {
  struct Case {
    const char* fixture;
    Provider from, to;
    const char* last_json;  // the end of the event that completes the message
  };
  const Case kCases[] = {
      {kAnthropicTextAndTools, Provider::kAnthropicMessages, Provider::kOpenAIChat,
       "{\"type\":\"message_stop\"}"},
      {kOpenAITools, Provider::kOpenAIChat, Provider::kAnthropicMessages,
       "\"finish_reason\":\"tool_calls\"}],\"usage\":null}"},
  };
  for (const Case& c : kCases) {
    const std::string s(c.fixture);
    const size_t complete = s.find(c.last_json) + std::strlen(c.last_json);
    for (size_t i = 0; i < complete; ++i) {
      Result r = Translate(c.from, c.to, options_, {std::string_view(s).substr(0, i)});
      ASSERT_FALSE(r.status.ok()) << "prefix " << i;
      EXPECT_TRUE(r.status.code() == absl::StatusCode::kDataLoss ||
                  r.status.code() == absl::StatusCode::kInvalidArgument)
          << r.status;
    }
    EXPECT_OK(Translate(c.from, c.to, options_, {std::string_view(s).substr(0, complete)}).status);
  }
}

// Random byte damage never crashes: every result is OK or an error status.
TEST_F(StreamTest, DamagedStreamsNeverCrash) {
  std::mt19937 rng(1);
  const char kBytes[] = "{}[]\":,\\\n\r ax0-";
  for (const Direction& d : kFixtures) {
    for (int round = 0; round < 300; ++round) {
      std::string s(d.fixture);
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        const size_t at = rng() % s.size();
        switch (rng() % 3) {
          case 0:
            s[at] = kBytes[rng() % (sizeof(kBytes) - 1)];
            break;
          case 1:
            s.erase(at, 1 + rng() % 8);
            break;
          default:
            s.insert(at, 1, kBytes[rng() % (sizeof(kBytes) - 1)]);
        }
      }
      Result r = Translate(d.from, d.to, options_, {s});
      const absl::StatusCode code = r.status.code();
      EXPECT_TRUE(code == absl::StatusCode::kOk || code == absl::StatusCode::kInvalidArgument ||
                  code == absl::StatusCode::kFailedPrecondition ||
                  code == absl::StatusCode::kDataLoss)
          << r.status;
    }
  }
}

// An event larger than max_event_bytes is refused, however it is chunked.
TEST_F(StreamTest, RefusesAnEventOverTheSizeLimit) {
  options_.max_event_bytes = 512;
  std::string upstream = Cut(kAnthropicText, "event: content_block_delta");
  upstream +=
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
      "\"delta\":{\"type\":\"text_delta\",\"text\":\"" +
      std::string(600, 'x') + "\"}}\n\n";
  for (size_t chunk : {size_t{7}, size_t{100}, upstream.size()}) {
    std::vector<std::string_view> pieces;
    for (size_t i = 0; i < upstream.size(); i += chunk) {
      pieces.push_back(std::string_view(upstream).substr(i, chunk));
    }
    Result r = Translate(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_, pieces);
    EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kResourceExhausted, "max_event_bytes (512)"));
  }
}

// After an error every call returns it and adds nothing; Feed after Finish
// is out of order.
TEST_F(StreamTest, ErrorsAreStickyAndCallsAreOrdered) {
  StreamTranslator t(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_);
  std::string out;
  absl::Status first = t.Feed("data: {nope}\n\n", &out);
  EXPECT_THAT(first, StatusIs(absl::StatusCode::kInvalidArgument, "invalid JSON"));
  EXPECT_EQ(t.Feed(kAnthropicText, &out), first);
  EXPECT_EQ(t.Finish(&out), first);
  EXPECT_TRUE(out.empty());

  StreamTranslator done(Provider::kAnthropicMessages, Provider::kOpenAIChat, options_);
  ASSERT_OK(done.Feed(kAnthropicText, &out));
  ASSERT_OK(done.Finish(&out));
  EXPECT_THAT(done.Feed("data: {}\n\n", &out),
              StatusIs(absl::StatusCode::kFailedPrecondition, "Feed after Finish"));
}

// A provider to itself passes the bytes through unchanged.
TEST_F(StreamTest, SameProviderPassesBytesThrough) {
  Result r = Translate(Provider::kOpenAIChat, Provider::kOpenAIChat, options_,
                       {"data: not even json\n", "\n"});
  EXPECT_OK(r.status);
  EXPECT_EQ(r.out, "data: not even json\n\n");
}

}  // namespace
}  // namespace understudy::translate
