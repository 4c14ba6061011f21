#include "encoding/http_body.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace understudy::encoding {

std::string HeaderValue(const understudy::v1::HttpMessage& msg, std::string_view key) {
  std::string value;
  for (const understudy::v1::Header& h : msg.headers()) {
    if (h.key() == key) value = h.value();
  }
  return value;
}

void DecodeMessageBody(understudy::v1::HttpMessage* msg, const DecodeLimits& limits) {
  if (msg->body_decode() != understudy::v1::BODY_DECODE_NONE) return;  // decoded already
  const std::string coding(absl::StripAsciiWhitespace(HeaderValue(*msg, "content-encoding")));
  if (ParseContentEncoding(coding).empty()) return;  // none or identity
  DecodedBody body = DecodeBody(coding, msg->body(), limits, !msg->body_truncated());
  switch (body.status.code()) {
    case absl::StatusCode::kOk:
      msg->set_body_decode(understudy::v1::BODY_DECODED);
      break;
    case absl::StatusCode::kUnimplemented:
      // Kept as it arrived: nothing here can read it.
      msg->set_body_decode(understudy::v1::BODY_DECODE_UNSUPPORTED);
      msg->set_decode_error(std::string(body.status.message()));
      return;
    case absl::StatusCode::kResourceExhausted:
      msg->set_body_decode(understudy::v1::BODY_DECODE_LIMIT);
      break;
    default:
      msg->set_body_decode(understudy::v1::BODY_DECODE_CORRUPT);
      break;
  }
  msg->set_body(std::move(body.data));
  msg->set_content_encoding(coding);
  if (!body.status.ok()) {
    msg->set_decode_error(std::string(body.status.message()));
    msg->set_body_truncated(true);
  }
}

}  // namespace understudy::encoding
