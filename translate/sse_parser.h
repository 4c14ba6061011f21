// translate/sse_parser.h (internal to translate/)
// An incremental parser of server-sent events (the WHATWG HTML "event stream"
// format): bytes arrive in arbitrary chunks; each event is handed over as
// soon as its blank line arrives. Lines end in CRLF, LF or a lone CR (a CR
// at the end of one chunk and an LF at the start of the next are one line
// end). Lines starting with ':' are comments; `data` lines of one event are
// joined with '\n'; `event` names the event; other fields (`id`, `retry`)
// are ignored because neither provider's stream uses them. An event without
// a data line is not dispatched, as the format says.
//
// Memory is bounded: the unfinished line plus the event's data so far may
// not exceed max_event_bytes (ResourceExhausted otherwise).
//
// Thread safety: one thread at a time.
#ifndef UNDERSTUDY_TRANSLATE_SSE_PARSER_H_
#define UNDERSTUDY_TRANSLATE_SSE_PARSER_H_

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace understudy::translate::internal {

struct SseEvent {
  std::string_view event;  // the `event` field; empty when there was none
  std::string_view data;   // the data lines joined with '\n'
};

class SseParser {
 public:
  explicit SseParser(size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

  // Feed parses the next chunk and calls `on_event(const SseEvent&)`, which
  // returns absl::Status, for each event completed by it; the first error
  // (the parser's or on_event's) is returned and parsing stops.
  template <typename OnEvent>
  [[nodiscard]] absl::Status Feed(std::string_view chunk, OnEvent&& on_event);

  // Finish ends the input. An event still open (its blank line never came,
  // e.g. `data: [DONE]` as the last line without a line end) is dispatched,
  // because a server that closes right after its last line has said all of
  // it; an event cut inside its JSON fails in the caller's JSON parse.
  template <typename OnEvent>
  [[nodiscard]] absl::Status Finish(OnEvent&& on_event);

 private:
  template <typename OnEvent>
  absl::Status Line(std::string_view line, OnEvent& on_event);
  absl::Status TooLarge() const {
    return absl::ResourceExhaustedError(
        absl::StrCat("SSE event larger than max_event_bytes (", max_event_bytes_, ")"));
  }

  const size_t max_event_bytes_;
  std::string line_;   // a line not yet ended, carried to the next chunk
  std::string data_;   // the current event's data so far
  std::string event_;  // the current event's name
  bool has_data_ = false;
  bool skip_lf_ = false;  // the last chunk ended in CR: an LF next ends no line
};

template <typename OnEvent>
absl::Status SseParser::Feed(std::string_view chunk, OnEvent&& on_event) {
  const char* p = chunk.data();
  const size_t n = chunk.size();
  size_t i = 0;
  if (skip_lf_ && n > 0) {
    skip_lf_ = false;
    if (p[0] == '\n') i = 1;
  }
  while (i < n) {
    // Find the line end; memchr for LF is the fast path, a CR before it
    // ends the line earlier.
    const char* lf = static_cast<const char*>(std::memchr(p + i, '\n', n - i));
    const size_t limit = lf != nullptr ? static_cast<size_t>(lf - p) : n;
    const char* cr = static_cast<const char*>(std::memchr(p + i, '\r', limit - i));
    const size_t j = cr != nullptr ? static_cast<size_t>(cr - p) : limit;
    if (j == n) {  // no line end in this chunk: carry the rest over
      if (line_.size() + (n - i) + data_.size() > max_event_bytes_) return TooLarge();
      line_.append(p + i, n - i);
      break;
    }
    std::string_view line(p + i, j - i);
    if (!line_.empty()) {
      line_.append(line.data(), line.size());
      line = line_;
    }
    if (line.size() + data_.size() > max_event_bytes_) return TooLarge();
    absl::Status status = Line(line, on_event);
    line_.clear();
    if (!status.ok()) return status;
    size_t next = j + 1;
    if (p[j] == '\r') {
      if (j + 1 == n) {
        skip_lf_ = true;  // an LF may start the next chunk
      } else if (p[j + 1] == '\n') {
        next = j + 2;  // CRLF
      }
    }
    i = next;
  }
  return absl::OkStatus();
}

template <typename OnEvent>
absl::Status SseParser::Finish(OnEvent&& on_event) {
  skip_lf_ = false;
  if (!line_.empty()) {
    std::string last;
    last.swap(line_);
    absl::Status status = Line(std::string_view(last), on_event);
    if (!status.ok()) return status;
  }
  return Line(std::string_view(), on_event);  // the blank line that never came
}

template <typename OnEvent>
absl::Status SseParser::Line(std::string_view line, OnEvent& on_event) {
  if (line.empty()) {
    absl::Status status = absl::OkStatus();
    if (has_data_) status = on_event(SseEvent{event_, data_});
    data_.clear();
    event_.clear();
    has_data_ = false;
    return status;
  }
  if (line[0] == ':') return absl::OkStatus();  // a comment
  const size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    event_.assign(value.data(), value.size());
  }
  return absl::OkStatus();
}

}  // namespace understudy::translate::internal

#endif  // UNDERSTUDY_TRANSLATE_SSE_PARSER_H_
