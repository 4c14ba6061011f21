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

// ---- OpenAI Responses API (POST /v1/responses) ----

// A Responses request: input items, instructions, a function tool and a
// built-in tool, structured output via text.format.
inline constexpr char kResponsesRequest[] = R"({
  "model": "gpt-4.1", "stream": true, "instructions": "Answer in JSON.",
  "max_output_tokens": 512,
  "input": [{"role": "user", "content": [{"type": "input_text", "text": "Weather in Zürich?"}]}],
  "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
            {"type": "web_search_preview"}],
  "text": {"format": {"type": "json_schema", "name": "weather", "schema": {"type": "object"}}}
})";

// Non-streaming: a reasoning item (not part of the answer), then a message
// with two output_text parts; cached and reasoning tokens in usage.
inline constexpr char kResponsesJson[] = R"({
  "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
  "object": "response",
  "created_at": 1741476542,
  "status": "completed",
  "error": null,
  "incomplete_details": null,
  "model": "gpt-4.1-2025-04-14",
  "output": [
    {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Think."}]},
    {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
     "content": [
       {"type": "output_text", "text": "Paris is the capital of France. It has about 2.1 million",
        "annotations": []},
       {"type": "output_text", "text": " inhabitants — «la Ville Lumière» 🗼", "annotations": []}
     ]}
  ],
  "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 12},
            "output_tokens": 87, "output_tokens_details": {"reasoning_tokens": 64},
            "total_tokens": 123}
})";

// Non-streaming: two function calls after a reasoning item.
inline constexpr char kResponsesToolJson[] = R"({
  "id": "resp_2", "object": "response", "status": "completed", "model": "gpt-4o-mini-2024-07-18",
  "output": [
    {"id": "rs_2", "type": "reasoning", "summary": []},
    {"id": "fc_1", "type": "function_call", "status": "completed", "name": "get_weather",
     "call_id": "call_w1", "arguments": "{\"city\":\"Zürich\"}"},
    {"id": "fc_2", "type": "function_call", "status": "completed", "name": "get_time",
     "call_id": "call_t1", "arguments": "{\"tz\":\"Europe/Zurich\"}"}
  ],
  "usage": {"input_tokens": 80, "output_tokens": 40, "total_tokens": 120}
})";

// Non-streaming refusal: a message whose only part is a refusal.
inline constexpr char kResponsesRefusalJson[] = R"({
  "id": "resp_3", "object": "response", "status": "completed", "model": "gpt-4o-2024-08-06",
  "output": [{"id": "msg_3", "type": "message", "role": "assistant", "status": "completed",
              "content": [{"type": "refusal", "refusal": "I'm sorry, I can't help with that."}]}],
  "usage": {"input_tokens": 20, "output_tokens": 9, "total_tokens": 29}
})";

// Cut short by max_output_tokens.
inline constexpr char kResponsesIncompleteJson[] = R"({
  "id": "resp_4", "object": "response", "status": "incomplete",
  "incomplete_details": {"reason": "max_output_tokens"}, "model": "gpt-4.1-2025-04-14",
  "output": [{"id": "msg_4", "type": "message", "role": "assistant", "status": "incomplete",
              "content": [{"type": "output_text", "text": "Once upon a", "annotations": []}]}],
  "usage": {"input_tokens": 10, "output_tokens": 16, "total_tokens": 26}
})";

// A failed response object (HTTP 200 with status failed).
inline constexpr char kResponsesFailedJson[] = R"({
  "id": "resp_5", "object": "response", "status": "failed", "model": "gpt-4.1-2025-04-14",
  "error": {"code": "server_error", "message": "The model failed to generate a response."},
  "incomplete_details": null, "output": [], "usage": null
})";

// Streaming text: created, in_progress, a reasoning item, a message whose
// text comes in deltas (JSON escapes: \u2014 and a surrogate pair for the
// emoji), part and item done events, completed with usage. The same answer
// as kResponsesJson. A keep-alive comment, and CRLF for one event.
inline constexpr char kResponsesSse[] = R"(: keep-alive

event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","created_at":1741476542,"status":"in_progress","model":"gpt-4.1-2025-04-14","output":[],"usage":null}}

event: response.in_progress
data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1","object":"response","status":"in_progress","model":"gpt-4.1-2025-04-14","output":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":3,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":4,"output_index":1,"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant","content":[]}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":5,"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":6,"item_id":"msg_1","output_index":1,"content_index":0,"delta":"Paris is the capital"}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":7,"item_id":"msg_1","output_index":1,"content_index":0,"delta":" of France. It has about 2.1 million"}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":8,"item_id":"msg_1","output_index":1,"content_index":0,"delta":" inhabitants \u2014 «la Ville Lumière» \ud83d\uddfc"}

event: response.output_text.done
data: {"type":"response.output_text.done","sequence_number":9,"item_id":"msg_1","output_index":1,"content_index":0,"text":"Paris is the capital of France. It has about 2.1 million inhabitants — «la Ville Lumière» 🗼"}

event: response.content_part.done
data: {"type":"response.content_part.done","sequence_number":10,"item_id":"msg_1","output_index":1,"content_index":0,"part":{"type":"output_text","text":"Paris is the capital of France. It has about 2.1 million inhabitants — «la Ville Lumière» 🗼","annotations":[]}}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":11,"output_index":1,"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Paris is the capital of France. It has about 2.1 million inhabitants — «la Ville Lumière» 🗼","annotations":[]}]}}
)"
    "\r\nevent: response.completed\r\n"
    R"(data: {"type":"response.completed","sequence_number":12,"response":{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1-2025-04-14","output":[{"id":"rs_1","type":"reasoning","summary":[]},{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Paris is the capital of France. It has about 2.1 million inhabitants — «la Ville Lumière» 🗼","annotations":[]}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":12},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":64},"total_tokens":123}}})"
    "\r\n\r\n";

// Streaming function calls: two calls whose arguments arrive as deltas,
// then their done events; the same answer as kResponsesToolJson.
inline constexpr char kResponsesToolSse[] = R"(event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_2","object":"response","status":"in_progress","model":"gpt-4o-mini-2024-07-18","output":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"rs_2","type":"reasoning","summary":[]}}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":2,"output_index":0,"item":{"id":"rs_2","type":"reasoning","summary":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":3,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"in_progress","name":"get_weather","call_id":"call_w1","arguments":""}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":4,"item_id":"fc_1","output_index":1,"delta":"{\"city\":"}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":5,"item_id":"fc_1","output_index":1,"delta":"\"Zürich\"}"}

event: response.function_call_arguments.done
data: {"type":"response.function_call_arguments.done","sequence_number":6,"item_id":"fc_1","output_index":1,"arguments":"{\"city\":\"Zürich\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":7,"output_index":1,"item":{"id":"fc_1","type":"function_call","status":"completed","name":"get_weather","call_id":"call_w1","arguments":"{\"city\":\"Zürich\"}"}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":8,"output_index":2,"item":{"id":"fc_2","type":"function_call","status":"in_progress","name":"get_time","call_id":"call_t1","arguments":""}}

event: response.function_call_arguments.delta
data: {"type":"response.function_call_arguments.delta","sequence_number":9,"item_id":"fc_2","output_index":2,"delta":"{\"tz\":\"Europe/Zurich\"}"}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":10,"output_index":2,"item":{"id":"fc_2","type":"function_call","status":"completed","name":"get_time","call_id":"call_t1","arguments":"{\"tz\":\"Europe/Zurich\"}"}}

event: response.completed
data: {"type":"response.completed","sequence_number":11,"response":{"id":"resp_2","object":"response","status":"completed","model":"gpt-4o-mini-2024-07-18","output":[],"usage":{"input_tokens":80,"output_tokens":40,"total_tokens":120}}}

)";

// Streaming refusal: refusal deltas in a message.
inline constexpr char kResponsesRefusalSse[] = R"(event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_3","object":"response","status":"in_progress","model":"gpt-4o-2024-08-06","output":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_3","type":"message","status":"in_progress","role":"assistant","content":[]}}

event: response.content_part.added
data: {"type":"response.content_part.added","sequence_number":2,"item_id":"msg_3","output_index":0,"content_index":0,"part":{"type":"refusal","refusal":""}}

event: response.refusal.delta
data: {"type":"response.refusal.delta","sequence_number":3,"item_id":"msg_3","output_index":0,"content_index":0,"delta":"I'm sorry, I can't "}

event: response.refusal.delta
data: {"type":"response.refusal.delta","sequence_number":4,"item_id":"msg_3","output_index":0,"content_index":0,"delta":"help with that."}

event: response.refusal.done
data: {"type":"response.refusal.done","sequence_number":5,"item_id":"msg_3","output_index":0,"content_index":0,"refusal":"I'm sorry, I can't help with that."}

event: response.output_item.done
data: {"type":"response.output_item.done","sequence_number":6,"output_index":0,"item":{"id":"msg_3","type":"message","status":"completed","role":"assistant","content":[{"type":"refusal","refusal":"I'm sorry, I can't help with that."}]}}

event: response.completed
data: {"type":"response.completed","sequence_number":7,"response":{"id":"resp_3","object":"response","status":"completed","model":"gpt-4o-2024-08-06","output":[],"usage":{"input_tokens":20,"output_tokens":9,"total_tokens":29}}}

)";

// Streaming, cut short by max_output_tokens: ends with response.incomplete.
inline constexpr char kResponsesIncompleteSse[] = R"(event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_4","object":"response","status":"in_progress","model":"gpt-4.1-2025-04-14","output":[]}}

event: response.output_item.added
data: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_4","type":"message","status":"in_progress","role":"assistant","content":[]}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_4","output_index":0,"content_index":0,"delta":"Once upon a"}

event: response.incomplete
data: {"type":"response.incomplete","sequence_number":3,"response":{"id":"resp_4","object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"model":"gpt-4.1-2025-04-14","output":[],"usage":{"input_tokens":10,"output_tokens":16,"total_tokens":26}}}

)";

// Streaming failure: ends with response.failed carrying the error.
inline constexpr char kResponsesFailedSse[] = R"(event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_5","object":"response","status":"in_progress","model":"gpt-4.1-2025-04-14","output":[]}}

event: response.failed
data: {"type":"response.failed","sequence_number":1,"response":{"id":"resp_5","object":"response","status":"failed","model":"gpt-4.1-2025-04-14","error":{"code":"server_error","message":"The model failed to generate a response."},"output":[],"usage":null}}

)";

// A stream interrupted by an `error` event (no terminal response event).
inline constexpr char kResponsesErrorEventSse[] = R"(event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_6","object":"response","status":"in_progress","model":"gpt-4.1-2025-04-14","output":[]}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_6","output_index":0,"content_index":0,"delta":"Hel"}

event: error
data: {"type":"error","sequence_number":2,"code":"rate_limit_exceeded","message":"Rate limit reached for gpt-4.1","param":null}

)";

// A stream that dies mid-event, before any terminal event.
inline constexpr char kResponsesTruncatedSse[] = R"(event: response.created
data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_7","object":"response","status":"in_progress","model":"gpt-4.1-2025-04-14","output":[]}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":1,"item_id":"msg_7","output_index":0,"content_index":0,"delta":"Once upon a"}

event: response.output_text.delta
data: {"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_7","output_index":0,"content_index":0,"delta":" ti)";

}  // namespace understudy::compare::fixtures

#endif  // UNDERSTUDY_TESTS_COMPARE_FIXTURES_H_
