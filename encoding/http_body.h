// encoding/http_body.h
// Decodes the body of a captured HTTP message in place, by its
// Content-Encoding header, so parsers, comparisons and stored records see
// the bytes the client meant. The observe path (live exchanges) and the
// shadow client (mirrored ones) both call it, with the same limits.
//
// Example (given v1::HttpMessage* response):
//   DecodeMessageBody(response, DecodeLimits{});
//   bool readable = response->body_decode() == v1::BODY_DECODE_NONE ||
//                   response->body_decode() == v1::BODY_DECODED;
//
// Thread safety: a pure function.
#ifndef UNDERSTUDY_ENCODING_HTTP_BODY_H_
#define UNDERSTUDY_ENCODING_HTTP_BODY_H_

#include <string>

#include "absl/status/status.h"
#include "encoding/content_decoder.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::encoding {

// DecodeMessageBody decodes msg->body() per msg's content-encoding header
// (the last one wins if repeated) and records the result in
// msg->body_decode() (see exchange.proto's BodyDecode), the header's value
// in msg->content_encoding() when the body was replaced by decoded bytes,
// and why decoding stopped in msg->decode_error(). A body already marked
// truncated is decoded as a prefix (its end is not an error). Idempotent:
// a message already decoded (body_decode set) is left alone.
void DecodeMessageBody(understudy::v1::HttpMessage* msg, const DecodeLimits& limits);

// HeaderValue returns the last value of header `key` (lower-case), "" when absent.
std::string HeaderValue(const understudy::v1::HttpMessage& msg, std::string_view key);

}  // namespace understudy::encoding

#endif  // UNDERSTUDY_ENCODING_HTTP_BODY_H_
