// examples/fake-model/compression.h (internal to the fake model)
// Content codings for the fake model's answers: Accept-Encoding negotiation
// and gzip / br / zstd compressors that can flush mid-stream, so an SSE
// answer stays a stream (every event decodable as soon as it arrives).
#ifndef UNDERSTUDY_EXAMPLES_FAKE_MODEL_COMPRESSION_H_
#define UNDERSTUDY_EXAMPLES_FAKE_MODEL_COMPRESSION_H_

#include <memory>
#include <string>
#include <string_view>

namespace understudy::fake_model {

enum class Coding { kIdentity, kGzip, kBrotli, kZstd };

// CodingName is the Content-Encoding token: "gzip", "br", "zstd" or
// "identity".
const char* CodingName(Coding coding);

// NegotiateCoding picks a coding from an Accept-Encoding value. q-values are
// honoured (q=0 refuses a coding; "*" stands for gzip), the highest q wins,
// and ties go to br, zstd, gzip for a whole body and to gzip, br, zstd for
// a stream (gzip with a sync flush per event is what every SSE client
// decodes). kIdentity when nothing supported is acceptable.
Coding NegotiateCoding(std::string_view accept_encoding, bool stream);

// A streaming compressor. Write returns the compressed bytes available so
// far; with `flush`, everything written so far can be decoded from the
// output (gzip Z_SYNC_FLUSH, BROTLI_OPERATION_FLUSH, ZSTD_e_flush). Finish
// ends the stream (gzip trailer, brotli last block, zstd epilogue).
class Compressor {
 public:
  virtual ~Compressor() = default;
  virtual std::string Write(std::string_view data, bool flush) = 0;
  virtual std::string Finish() = 0;
};

// NewCompressor returns nullptr for kIdentity.
std::unique_ptr<Compressor> NewCompressor(Coding coding);

// CompressAll compresses a whole body (identity: returned unchanged).
std::string CompressAll(Coding coding, std::string_view data);

}  // namespace understudy::fake_model

#endif  // UNDERSTUDY_EXAMPLES_FAKE_MODEL_COMPRESSION_H_
