// tests/translate/translate_test_util.h
// Helpers for the translate tests: JSON parsing that fails the test instead
// of throwing, and a reader of the SSE the translator writes (written here,
// independently of translate/sse_parser.h, so the output is checked by a
// second parser).
#ifndef UNDERSTUDY_TESTS_TRANSLATE_TRANSLATE_TEST_UTIL_H_
#define UNDERSTUDY_TESTS_TRANSLATE_TRANSLATE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace understudy::translate::testing {

inline nlohmann::json Json(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << text;
  return j;
}

struct OutEvent {
  std::string event;    // the `event:` line, empty when absent
  std::string data;     // the raw data
  nlohmann::json json;  // data parsed; null for `[DONE]`
};

// ReadSse splits translator output (LF line ends, one data line per event,
// each event ended by a blank line) and fails the test on anything else.
inline std::vector<OutEvent> ReadSse(std::string_view sse) {
  std::vector<OutEvent> events;
  size_t pos = 0;
  while (pos < sse.size()) {
    const size_t end = sse.find("\n\n", pos);
    if (end == std::string_view::npos) {
      ADD_FAILURE() << "output does not end with a blank line: " << sse.substr(pos);
      break;
    }
    std::string_view block = sse.substr(pos, end - pos);
    pos = end + 2;
    OutEvent e;
    while (!block.empty()) {
      const size_t nl = block.find('\n');
      std::string_view line = block.substr(0, nl);
      block = nl == std::string_view::npos ? std::string_view() : block.substr(nl + 1);
      if (line.rfind("event: ", 0) == 0) {
        e.event = std::string(line.substr(7));
      } else if (line.rfind("data: ", 0) == 0) {
        EXPECT_TRUE(e.data.empty()) << "two data lines in one event";
        e.data = std::string(line.substr(6));
      } else {
        ADD_FAILURE() << "unexpected line: " << line;
      }
    }
    if (e.data != "[DONE]") e.json = Json(e.data);
    events.push_back(std::move(e));
  }
  return events;
}

// ReadUpstreamSse reads a fixture as a provider would send it: CRLF or LF
// line ends, comment lines, data spread over several lines (joined by LF).
inline std::vector<OutEvent> ReadUpstreamSse(std::string_view sse) {
  std::string text;
  for (size_t i = 0; i < sse.size(); ++i) {
    if (sse[i] == '\r' && i + 1 < sse.size() && sse[i + 1] == '\n') continue;
    text.push_back(sse[i]);
  }
  std::vector<OutEvent> events;
  OutEvent e;
  bool has_data = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) {
      if (has_data) {
        if (e.data != "[DONE]") e.json = Json(e.data);
        events.push_back(e);
      }
      e = OutEvent();
      has_data = false;
    } else if (line[0] == ':') {
      continue;
    } else if (line.rfind("event: ", 0) == 0) {
      e.event = line.substr(7);
    } else if (line.rfind("data: ", 0) == 0) {
      if (has_data) e.data += "\n";
      e.data += line.substr(6);
      has_data = true;
    } else {
      ADD_FAILURE() << "unexpected fixture line: " << line;
    }
  }
  return events;
}

}  // namespace understudy::translate::testing

#endif  // UNDERSTUDY_TESTS_TRANSLATE_TRANSLATE_TEST_UTIL_H_
