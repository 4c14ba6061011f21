// Tests for encoding/content_decoder.h: every coding round-trips, however
// the encoded bytes are chunked; truncated and corrupt input is a clear
// error that keeps what was decoded; a decompression bomb stops at the
// limit.
#include "encoding/content_decoder.h"

#include <brotli/encode.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "tests/common/test_util.h"

namespace understudy::encoding {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Deflate with zlib; window_bits 15 = zlib, -15 = raw, 31 = gzip.
std::string Zlib(std::string_view in, int window_bits, int level = 6) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string Brotli(std::string_view in) {
  size_t size = BrotliEncoderMaxCompressedSize(in.size());
  std::string out(size, '\0');
  EXPECT_TRUE(BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, in.size(),
                                    reinterpret_cast<const uint8_t*>(in.data()), &size,
                                    reinterpret_cast<uint8_t*>(out.data())));
  out.resize(size);
  return out;
}

std::string Zstd(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::string Encode(std::string_view coding, std::string_view in) {
  if (coding == "gzip") return Zlib(in, 31);
  if (coding == "deflate") return Zlib(in, 15);
  if (coding == "br") return Brotli(in);
  if (coding == "zstd") return Zstd(in);
  return std::string(in);
}

// An SSE answer, the kind of body the sidecar decodes most.
std::string SseText(int events) {
  std::string s;
  std::mt19937 rng(7);
  for (int i = 0; i < events; ++i) {
    s += "data: {\"choices\":[{\"delta\":{\"content\":\"token" + std::to_string(rng() % 1000) +
         " \"}}]}\n\n";
  }
  return s + "data: [DONE]\n\n";
}

// Decodes `encoded` fed in the given chunk sizes (the last chunk takes the rest).
absl::Status DecodeChunked(std::string_view coding, std::string_view encoded,
                           const std::vector<size_t>& cuts, std::string* out,
                           const DecodeLimits& limits = DecodeLimits{}) {
  ASSIGN_OR_RETURN(std::unique_ptr<ContentDecoder> d, ContentDecoder::Create(coding, limits));
  size_t at = 0;
  for (size_t cut : cuts) {
    RETURN_IF_ERROR(d->Feed(encoded.substr(at, cut - at), out));
    at = cut;
  }
  RETURN_IF_ERROR(d->Feed(encoded.substr(at), out));
  return d->Finish(out);
}

class ContentDecoderTest : public ::testing::TestWithParam<std::string> {};

// A long SSE body round-trips in one piece.
TEST_P(ContentDecoderTest, RoundTripsALongBody) {
  const std::string plain = SseText(5000);
  std::string out;
  ASSERT_OK(DecodeChunked(GetParam(), Encode(GetParam(), plain), {}, &out));
  EXPECT_EQ(out, plain);
}

// Cut into two at every byte, and into three at many pairs of bytes, the
// encoded body decodes to the same text.
TEST_P(ContentDecoderTest, AnyChunkingDecodesTheSame) {
  const std::string plain = SseText(40);
  const std::string encoded = Encode(GetParam(), plain);
  for (size_t i = 0; i <= encoded.size(); ++i) {
    std::string out;
    ASSERT_OK(DecodeChunked(GetParam(), encoded, {i}, &out)) << "cut at " << i;
    ASSERT_EQ(out, plain) << "cut at " << i;
  }
  for (size_t i = 0; i <= encoded.size(); i += 3) {
    for (size_t j = i; j <= encoded.size(); j += 7) {
      std::string out;
      ASSERT_OK(DecodeChunked(GetParam(), encoded, {i, j}, &out)) << i << "," << j;
      ASSERT_EQ(out, plain) << i << "," << j;
    }
  }
  std::vector<size_t> bytewise;
  for (size_t i = 1; i < encoded.size(); ++i) bytewise.push_back(i);
  std::string out;
  ASSERT_OK(DecodeChunked(GetParam(), encoded, bytewise, &out));
  EXPECT_EQ(out, plain);
}

// A body cut short is DataLoss at Finish; what came before is kept and is
// a prefix of the text. As a captured prefix (input_complete=false) it is
// not an error.
TEST_P(ContentDecoderTest, TruncatedBodyIsDataLossAndKeepsThePrefix) {
  const std::string plain = SseText(20000);  // > 1 MiB: several zstd blocks
  const std::string encoded = Encode(GetParam(), plain);
  const std::string_view half(encoded.data(), encoded.size() / 2);
  DecodedBody body = DecodeBody(GetParam(), half, DecodeLimits{});
  EXPECT_EQ(body.status.code(), absl::StatusCode::kDataLoss) << body.status;
  EXPECT_THAT(plain, StartsWith(body.data));
  EXPECT_GT(body.data.size(), 0u);

  DecodedBody prefix = DecodeBody(GetParam(), half, DecodeLimits{}, /*input_complete=*/false);
  EXPECT_OK(prefix.status);
  EXPECT_EQ(prefix.data, body.data);
}

// Bytes that are not of the coding at all are DataLoss naming the coding.
TEST_P(ContentDecoderTest, GarbageIsDataLossNamingTheCoding) {
  std::string garbage(4096, '\0');
  std::mt19937 rng(11);
  for (char& c : garbage) c = static_cast<char>(rng());
  garbage[0] = 'x';  // not a gzip magic or a zlib header
  DecodedBody body = DecodeBody(GetParam(), garbage, DecodeLimits{});
  EXPECT_EQ(body.status.code(), absl::StatusCode::kDataLoss) << body.status;
  EXPECT_THAT(std::string(body.status.message()), HasSubstr(GetParam()));
}

// 64 MiB of zeros squeezed into a few hundred KiB: decoding stops at a
// limit, never near the body's real size, and says which.
TEST_P(ContentDecoderTest, BombStopsAtTheLimit) {
  const std::string zeros(64 << 20, '\0');
  const std::string bomb = GetParam() == "gzip" || GetParam() == "deflate"
                               ? Zlib(zeros, GetParam() == "gzip" ? 31 : 15, 1)
                               : Encode(GetParam(), zeros);
  ASSERT_LT(bomb.size(), 1u << 20);
  DecodeLimits limits;  // 16 MiB, ratio 100 past 1 MiB

  // Fed whole: bounded by whichever limit comes first.
  DecodedBody body = DecodeBody(GetParam(), bomb, limits);
  EXPECT_EQ(body.status.code(), absl::StatusCode::kResourceExhausted) << body.status;
  EXPECT_LE(static_cast<int64_t>(body.data.size()), limits.max_output_bytes);

  // Fed as it streams in (1 KiB at a time), the ratio limit stops it early:
  // the output never runs more than one 64 KiB piece past the larger of
  // the ratio floor and ratio x input.
  absl::StatusOr<std::unique_ptr<ContentDecoder>> d = ContentDecoder::Create(GetParam(), limits);
  ASSERT_OK(d);
  std::string out;
  absl::Status s;
  for (size_t at = 0; at < bomb.size() && s.ok(); at += 1024) {
    s = (*d)->Feed(std::string_view(bomb).substr(at, 1024), &out);
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("ratio"));
  EXPECT_LE(static_cast<double>(out.size()),
            std::max(static_cast<double>(limits.ratio_floor_bytes),
                     limits.max_ratio * static_cast<double>((*d)->input_bytes())) +
                (64 << 10));

  // Without the ratio limit the absolute one holds, to the byte.
  limits.max_ratio = 1e12;
  limits.max_output_bytes = 5 << 20;
  body = DecodeBody(GetParam(), bomb, limits);
  EXPECT_EQ(body.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(body.status.message()), HasSubstr("5242880 bytes"));
  EXPECT_EQ(body.data.size(), 5u << 20);
}

INSTANTIATE_TEST_SUITE_P(Codings, ContentDecoderTest,
                         ::testing::Values("gzip", "deflate", "br", "zstd"),
                         [](const auto& info) { return info.param; });

// Raw deflate (no zlib header), as some servers send it, is decoded too.
TEST(ContentDecoderMiscTest, RawDeflateIsAccepted) {
  const std::string plain = SseText(100);
  std::string out;
  ASSERT_OK(DecodeChunked("deflate", Zlib(plain, -15), {1}, &out));
  EXPECT_EQ(out, plain);
}

// Concatenated gzip members decode to the concatenated texts (RFC 1952).
TEST(ContentDecoderMiscTest, ConcatenatedGzipMembersAllDecode) {
  const std::string a = SseText(10), b = "tail text";
  std::string out;
  ASSERT_OK(DecodeChunked("gzip", Zlib(a, 31) + Zlib(b, 31), {}, &out));
  EXPECT_EQ(out, a + b);
}

// "gzip, br" was gzipped first: it is un-brotli'd, then gunzipped.
TEST(ContentDecoderMiscTest, ChainedCodingsDecodeInReverseOrder) {
  const std::string plain = SseText(300);
  const std::string encoded = Brotli(Zlib(plain, 31));
  std::string out;
  ASSERT_OK(DecodeChunked("gzip, BR", encoded, {5, 50}, &out));
  EXPECT_EQ(out, plain);
  EXPECT_THAT(ParseContentEncoding(" gzip ,identity, BR,"),
              ::testing::ElementsAre("gzip", "br"));
}

// An unknown coding is Unimplemented naming it; identity and no coding pass
// bytes through; an empty gzip body (a 204, a HEAD) is fine.
TEST(ContentDecoderMiscTest, UnknownIdentityAndEmpty) {
  DecodedBody unknown = DecodeBody("compress", "abc", DecodeLimits{});
  EXPECT_EQ(unknown.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(unknown.status.message()), HasSubstr("\"compress\""));
  EXPECT_FALSE(IsSupportedCoding("compress"));
  EXPECT_TRUE(IsSupportedCoding("zstd"));

  for (const char* coding : {"", "identity", "Identity"}) {
    DecodedBody plain = DecodeBody(coding, "as is", DecodeLimits{});
    EXPECT_OK(plain.status);
    EXPECT_EQ(plain.data, "as is");
  }
  DecodedBody empty = DecodeBody("gzip", "", DecodeLimits{});
  EXPECT_OK(empty.status);
  EXPECT_EQ(empty.data, "");
}

// After a limit or an error, later calls add nothing and repeat the error.
TEST(ContentDecoderMiscTest, ErrorsAreSticky) {
  DecodeLimits limits;
  limits.max_output_bytes = 10;
  absl::StatusOr<std::unique_ptr<ContentDecoder>> created = ContentDecoder::Create("", limits);
  ASSERT_OK(created);
  ContentDecoder* d = created->get();
  std::string out;
  EXPECT_EQ(d->Feed("0123456789abc", &out).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(out, "0123456789");
  EXPECT_EQ(d->Feed("more", &out).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(d->Finish(&out).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(out, "0123456789");
  EXPECT_EQ(d->output_bytes(), 10);
}

}  // namespace
}  // namespace understudy::encoding
