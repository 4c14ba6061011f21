// Fuzzes the content decoders (encoding/content_decoder.h): gzip, deflate,
// br, zstd and stacked codings, whole and in chunks, under tight limits, so
// decompression bombs must stop at the limit.
//
// Input: byte 0 picks the Content-Encoding, byte 1 the chunk size; the rest
// is the encoded body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "encoding/content_decoder.h"

namespace enc = understudy::encoding;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const char* const kCodings[] = {"gzip",        "deflate",     "br",       "zstd",
                                         "identity",    "gzip, br",    "x-gzip",   "deflate, gzip",
                                         "zstd, gzip",  "GZIP",        "br, br",   "",
                                         "compress",    "gzip,,gzip",  "identity, deflate", "br , zstd"};
  const std::string_view coding = kCodings[data[0] % 16];
  const size_t chunk = 1 + data[1] % 128;
  std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  enc::DecodeLimits limits;
  limits.max_output_bytes = 1 << 20;
  limits.max_ratio = 50;
  limits.ratio_floor_bytes = 1 << 12;

  enc::DecodedBody whole = enc::DecodeBody(coding, body, limits, /*input_complete=*/data[0] & 0x10);
  if (static_cast<int64_t>(whole.data.size()) > limits.max_output_bytes) __builtin_trap();

  absl::StatusOr<std::unique_ptr<enc::ContentDecoder>> d = enc::ContentDecoder::Create(coding, limits);
  if (!d.ok()) return 0;
  std::string out;
  absl::Status s;
  for (size_t i = 0; i < body.size() && s.ok(); i += chunk) s = (*d)->Feed(body.substr(i, chunk), &out);
  if (s.ok()) s = (*d)->Finish(&out);
  if (static_cast<int64_t>(out.size()) > limits.max_output_bytes) __builtin_trap();
  (void)enc::ParseContentEncoding(body.substr(0, 64));
  return 0;
}
