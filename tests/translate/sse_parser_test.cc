// Tests for translate/sse_parser.h: the event-stream rules (line ends,
// comments, multi-line data, fields), chunking anywhere, and the size limit.
#include "translate/sse_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/common/test_util.h"

namespace understudy::translate::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::understudy::testing::StatusIs;

class SseParserTest : public ::testing::Test {
 protected:
  // Parse feeds `chunks` and Finish, returning (event, data) pairs.
  std::vector<std::pair<std::string, std::string>> Parse(const std::vector<std::string>& chunks,
                                                         size_t limit = 1 << 20) {
    SseParser parser(limit);
    std::vector<std::pair<std::string, std::string>> events;
    auto collect = [&](const SseEvent& e) {
      events.emplace_back(std::string(e.event), std::string(e.data));
      return absl::OkStatus();
    };
    for (const std::string& c : chunks) {
      status_ = parser.Feed(c, collect);
      if (!status_.ok()) return events;
    }
    status_ = parser.Finish(collect);
    return events;
  }

  absl::Status status_;
};

// LF, CRLF and lone CR line ends give the same events.
TEST_F(SseParserTest, AcceptsEveryLineEnd) {
  for (const char* eol : {"\n", "\r\n", "\r"}) {
    const std::string e(eol);
    const std::string text = "event: a" + e + "data: 1" + e + e + "data: 2" + e + e;
    EXPECT_THAT(Parse({text}), ElementsAre(Pair("a", "1"), Pair("", "2"))) << int(eol[0]);
    EXPECT_OK(status_);
  }
}

// A CR ending one chunk and an LF starting the next are one line end, not
// a line end followed by a blank line (which would end the event early).
TEST_F(SseParserTest, CrLfSplitAcrossChunksIsOneLineEnd) {
  EXPECT_THAT(Parse({"data: a\r", "\ndata: b\r\n\r\n"}), ElementsAre(Pair("", "a\nb")));
}

// Comments are skipped, data lines joined, one leading space stripped,
// other fields ignored, a field without colon counts with an empty value.
TEST_F(SseParserTest, FollowsTheFieldRules) {
  EXPECT_THAT(Parse({": keep-alive\n\n"
                     "id: 7\nretry: 10\nevent:x\ndata:  two spaces\ndata\ndata:last\n\n"}),
              ElementsAre(Pair("x", " two spaces\n\nlast")));
}

// An event with no data line is not dispatched; its name does not leak into
// the next event.
TEST_F(SseParserTest, DropsEventsWithoutData) {
  EXPECT_THAT(Parse({"event: lonely\n\ndata: {}\n\n"}), ElementsAre(Pair("", "{}")));
}

// Feeding one byte at a time gives the same events as feeding it whole.
TEST_F(SseParserTest, ByteAtATimeEqualsWhole) {
  const std::string text = ": c\r\nevent: e1\r\ndata: {\"a\":1}\r\n\r\ndata: x\rdata: y\r\r\n";
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  EXPECT_EQ(Parse(bytes), Parse({text}));
  EXPECT_THAT(Parse({text}), ElementsAre(Pair("e1", "{\"a\":1}"), Pair("", "x\ny")));
}

// The last event is delivered even without its blank line (or line end).
TEST_F(SseParserTest, FinishDeliversTheUnterminatedLastEvent) {
  EXPECT_THAT(Parse({"data: 1\n\ndata: [DONE]"}), ElementsAre(Pair("", "1"), Pair("", "[DONE]")));
  EXPECT_OK(status_);
}

// One line longer than the limit, split over chunks, is refused.
TEST_F(SseParserTest, RefusesALineOverTheLimit) {
  Parse({"data: " + std::string(60, 'x'), std::string(60, 'x')}, 100);
  EXPECT_THAT(status_, StatusIs(absl::StatusCode::kResourceExhausted, "max_event_bytes (100)"));
}

// Many short data lines adding up past the limit are refused too.
TEST_F(SseParserTest, RefusesAnEventOverTheLimit) {
  std::string text;
  for (int i = 0; i < 30; ++i) text += "data: xxxxxxxx\n";
  Parse({text}, 100);
  EXPECT_THAT(status_, StatusIs(absl::StatusCode::kResourceExhausted, "max_event_bytes"));
}

// Events below the limit pass however many there are: the limit is per event.
TEST_F(SseParserTest, LimitIsPerEvent) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "data: " + std::string(50, 'y') + "\n\n";
  EXPECT_EQ(Parse({text}, 100).size(), 100u);
  EXPECT_OK(status_);
}

// The callback's error stops parsing and is returned.
TEST_F(SseParserTest, StopsAtTheCallbacksError) {
  SseParser parser(1 << 20);
  int calls = 0;
  absl::Status s = parser.Feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) {
    ++calls;
    return absl::InvalidArgumentError("bad event");
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, "bad event"));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace understudy::translate::internal
