// tests/compare/fixtures.h
// Hand-written response bodies in each wire format the compare module reads.
#ifndef UNDERSTUDY_TESTS_COMPARE_FIXTURES_H_
#define UNDERSTUDY_TESTS_COMPARE_FIXTURES_H_

namespace understudy::compare::fixtures {

// OpenAI Chat Completions, non-streaming, two choices (n=2), cached tokens.
inline constexpr char kOpenAIJson[] = R"({
  "id": "chatcmpl-9XyZ1",
  "object": "chat.completion",
  "created": 1733000000,
  "model": "gpt-4o-2024-08-06",
  "system_fingerprint": "fp_6b68a8204b",
  "choices": [
    {"index": 1, "message": {"role": "assistant", "content": "Second choice."},
     "logprobs": null, "finish_reason": "stop"},
    {"index": 0, "message": {"role": "assistant",
      "content": "The capital of France is Paris. It has about 2.1 million inhabitants.",
      "refusal": null},
     "logprobs": null, "finish_reason": "stop"}
  ],
  "usage": {"prompt_tokens": 25, "completion_tokens": 17, "total_tokens": 42,
            "prompt_tokens_details": {"cached_tokens": 10}}
})";

// OpenAI non-streaming tool call.
inline constexpr char kOpenAIToolJson[] = R"({
  "id": "chatcmpl-tool1", "object": "chat.completion", "model": "gpt-4o-mini",
  "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
    "role": "assistant", "content": null,
    "tool_calls": [{"id": "call_abc", "type": "function",
      "function": {"name": "get_weather", "arguments": "{\"city\":\"Zürich\",\"unit\":\"celsius\"}"}}]}}],
  "usage": {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100}
})";

// OpenAI error body (HTTP 429).
inline constexpr char kOpenAIError[] = R"({
  "error": {"message": "Rate limit reached for gpt-4o", "type": "requests",
            "param": null, "code": "rate_limit_exceeded"}
})";

// OpenAI SSE: non-ASCII text (é, 日本, emoji) spread over deltas, usage in the
// last chunk (stream_options.include_usage), CRLF line ends, a comment line.
inline constexpr char kOpenAISse[] =
    ": keep-alive\r\n\r\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o-2024-08-06\",\"system_fingerprint\":\"fp_44709d6fcb\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
    "\"Caf\xC3\xA9 in \xE6\x97\xA5\xE6\x9C\xAC\"},\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
    "\" costs 4.50 \\u20ac \xF0\x9F\x98\x80\"},\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},"
    "\"finish_reason\":\"stop\"}],\"usage\":null}\r\n\r\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
    "\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
    "\"completion_tokens\":9,\"total_tokens\":21,\"prompt_tokens_details\":"
    "{\"cached_tokens\":0}}}\r\n\r\n"
    "data: [DONE]\r\n\r\n";

// OpenAI SSE: two parallel tool calls whose arguments arrive in pieces.
inline constexpr char kOpenAIToolSse[] =
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
    "\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":"
    "{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
    "{\"arguments\":\"{\\\"ci\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
    "{\"arguments\":\"ty\\\": \\\"Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"tz\\\":\"}}]},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":"
    "{\"arguments\":\"\\\"Europe/Paris\\\"}\"}}]},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],"
    "\"usage\":{\"prompt_tokens\":90,\"completion_tokens\":31,\"total_tokens\":121}}\n\n"
    "data: [DONE]\n\n";

// OpenAI SSE that dies mid-stream (no finish, no [DONE]).
inline constexpr char kOpenAITruncatedSse[] =
    "data: {\"id\":\"c3\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Once upon a\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c3\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" time";

// OpenAI SSE carrying an error object after some content.
inline constexpr char kOpenAIErrorSse[] =
    "data: {\"id\":\"c4\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
    "data: {\"error\":{\"message\":\"The server had an error while processing your request.\","
    "\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";

// Anthropic Messages, non-streaming, text then tool_use.
inline constexpr char kAnthropicJson[] = R"({
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
  "type": "message",
  "role": "assistant",
  "model": "claude-3-5-sonnet-20241022",
  "content": [
    {"type": "text", "text": "I'll look up the weather in Zürich."},
    {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9",
     "name": "get_weather", "input": {"unit": "celsius", "city": "Zürich"}}
  ],
  "stop_reason": "tool_use",
  "stop_sequence": null,
  "usage": {"input_tokens": 472, "output_tokens": 89, "cache_read_input_tokens": 100}
})";

// Anthropic error body (HTTP 529).
inline constexpr char kAnthropicError[] =
    R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})";

// Anthropic SSE: text block (with a multi-byte character split across
// deltas is impossible on the wire, but non-ASCII text is present), then a
// tool_use block whose input arrives as input_json_delta pieces, ping,
// message_delta with stop_reason and usage, message_stop.
inline constexpr char kAnthropicSse[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-haiku-20241022\","
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":410,"
    "\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Je v\xC3\xA9rifie la m\xC3\xA9t\xC3\xA9o \"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"\xC3\xA0 Z\xC3\xBCrich.\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"city\\\": \\\"Z\xC3\xBC\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"rich\\\", \\\"unit\\\": \\\"celsius\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

// Anthropic SSE interrupted by an overloaded error event.
inline constexpr char kAnthropicErrorSse[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-sonnet-20241022\","
    "\"usage\":{\"input_tokens\":20,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Sure\"}}\n\n"
    "event: error\n"
    "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

// Request bodies.
inline constexpr char kOpenAIJsonModeRequest[] = R"({
  "model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
  "response_format": {"type": "json_object"},
  "messages": [{"role": "user", "content": "List two cities as JSON."}]
})";
inline constexpr char kAnthropicRequest[] = R"({
  "model": "claude-3-5-sonnet-20241022", "max_tokens": 1024,
  "messages": [{"role": "user", "content": "Hello"}]
})";

}  // namespace understudy::compare::fixtures

#endif  // UNDERSTUDY_TESTS_COMPARE_FIXTURES_H_
