// encoding/content_decoder.cc
// Each coding is a Stage that decodes into 64 KiB pieces and hands every
// piece to the next stage at once, so memory stays bounded by the pieces in
// flight plus what the caller keeps; only the last stage's output counts
// against the limits (and every intermediate one against the absolute
// limit, so a nested bomb cannot spin either).
#include "encoding/content_decoder.h"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <array>
#include <functional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace understudy::encoding {
namespace {

constexpr size_t kPiece = 64 * 1024;
using Emit = std::function<absl::Status(std::string_view)>;

class Stage {
 public:
  virtual ~Stage() = default;
  // Decode consumes all of `in`, emitting decoded pieces.
  virtual absl::Status Decode(std::string_view in, const Emit& emit) = 0;
  // End checks that the input ended at a stream boundary.
  virtual absl::Status End() = 0;
};

class IdentityStage final : public Stage {
 public:
  absl::Status Decode(std::string_view in, const Emit& emit) override {
    return in.empty() ? absl::OkStatus() : emit(in);
  }
  absl::Status End() override { return absl::OkStatus(); }
};

// zlib for gzip (members may be concatenated, RFC 1952) and deflate (RFC
// 9110 says zlib-wrapped; some servers send raw deflate, told apart by the
// zlib header check).
class ZlibStage final : public Stage {
 public:
  explicit ZlibStage(bool gzip) : gzip_(gzip) {}
  ~ZlibStage() override {
    if (initialized_) inflateEnd(&zs_);
  }

  absl::Status Decode(std::string_view in, const Emit& emit) override {
    if (in.empty()) return absl::OkStatus();
    seen_input_ = true;
    if (!initialized_) {
      if (!gzip_) {
        // Two bytes tell a zlib header from raw deflate.
        head_.append(in.data(), in.size());
        if (head_.size() < 2) return absl::OkStatus();
        const auto cmf = static_cast<unsigned char>(head_[0]);
        const auto flg = static_cast<unsigned char>(head_[1]);
        const bool zlib_header = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
        RETURN_IF_ERROR(Init(zlib_header ? 15 : -15));
        std::string buffered = std::move(head_);
        return Run(buffered, emit);
      }
      RETURN_IF_ERROR(Init(15 + 32));  // gzip, or a zlib stream labelled gzip
    }
    return Run(in, emit);
  }

  absl::Status End() override {
    if (!seen_input_) return absl::OkStatus();
    if (!initialized_ || !ended_) {
      return absl::DataLossError(
          absl::StrCat(gzip_ ? "gzip" : "deflate", " stream ended before its end marker"));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Init(int window_bits) {
    if (inflateInit2(&zs_, window_bits) != Z_OK) return absl::InternalError("zlib: init failed");
    initialized_ = true;
    return absl::OkStatus();
  }

  absl::Status Run(std::string_view in, const Emit& emit) {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    std::array<char, kPiece> buf;
    while (zs_.avail_in > 0) {
      if (ended_) {
        // Another gzip member may follow; anything else is not gzip.
        if (!gzip_ || zs_.avail_in < 2 || zs_.next_in[0] != 0x1f || zs_.next_in[1] != 0x8b) {
          return absl::DataLossError(
              absl::StrCat(gzip_ ? "gzip" : "deflate", ": bytes after the end of the stream"));
        }
        inflateReset(&zs_);
        ended_ = false;
      }
      zs_.next_out = reinterpret_cast<Bytef*>(buf.data());
      zs_.avail_out = static_cast<uInt>(buf.size());
      const int r = inflate(&zs_, Z_NO_FLUSH);
      const size_t produced = buf.size() - zs_.avail_out;
      if (produced > 0) RETURN_IF_ERROR(emit(std::string_view(buf.data(), produced)));
      if (r == Z_STREAM_END) {
        ended_ = true;
        continue;
      }
      if (r == Z_OK) continue;
      if (r == Z_BUF_ERROR && produced == 0 && zs_.avail_in == 0) break;
      return absl::DataLossError(absl::StrCat(gzip_ ? "gzip" : "deflate", ": corrupt data (",
                                              zs_.msg != nullptr ? zs_.msg : "zlib error", ")"));
    }
    return absl::OkStatus();
  }

  const bool gzip_;
  z_stream zs_{};
  bool initialized_ = false;
  bool ended_ = false;
  bool seen_input_ = false;
  std::string head_;  // deflate: bytes held until the header check
};

class BrotliStage final : public Stage {
 public:
  BrotliStage() : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliStage() override { BrotliDecoderDestroyInstance(state_); }

  absl::Status Decode(std::string_view in, const Emit& emit) override {
    if (in.empty()) return absl::OkStatus();
    seen_input_ = true;
    if (ended_) return absl::DataLossError("br: bytes after the end of the stream");
    size_t avail_in = in.size();
    auto next_in = reinterpret_cast<const uint8_t*>(in.data());
    std::array<uint8_t, kPiece> buf;
    while (true) {
      size_t avail_out = buf.size();
      uint8_t* next_out = buf.data();
      BrotliDecoderResult r =
          BrotliDecoderDecompressStream(state_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
      const size_t produced = buf.size() - avail_out;
      if (produced > 0) {
        RETURN_IF_ERROR(emit(std::string_view(reinterpret_cast<char*>(buf.data()), produced)));
      }
      if (r == BROTLI_DECODER_RESULT_SUCCESS) {
        ended_ = true;
        if (avail_in > 0) return absl::DataLossError("br: bytes after the end of the stream");
        return absl::OkStatus();
      }
      if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) continue;
      if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) return absl::OkStatus();
      return absl::DataLossError(absl::StrCat(
          "br: corrupt data (", BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state_)), ")"));
    }
  }

  absl::Status End() override {
    if (seen_input_ && !ended_) return absl::DataLossError("br stream ended before its end marker");
    return absl::OkStatus();
  }

 private:
  BrotliDecoderState* state_;
  bool ended_ = false;
  bool seen_input_ = false;
};

class ZstdStage final : public Stage {
 public:
  ZstdStage() : ctx_(ZSTD_createDCtx()) {
    // A frame may ask for a window of up to 2 GiB; 2^24 (16 MiB) covers
    // every standard level and bounds the decoder's own memory.
    ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, 24);
  }
  ~ZstdStage() override { ZSTD_freeDCtx(ctx_); }

  absl::Status Decode(std::string_view in, const Emit& emit) override {
    if (in.empty()) return absl::OkStatus();
    seen_input_ = true;
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    std::array<char, kPiece> buf;
    while (true) {
      ZSTD_outBuffer output{buf.data(), buf.size(), 0};
      const size_t r = ZSTD_decompressStream(ctx_, &output, &input);
      if (ZSTD_isError(r)) {
        return absl::DataLossError(absl::StrCat("zstd: corrupt data (", ZSTD_getErrorName(r), ")"));
      }
      if (output.pos > 0) RETURN_IF_ERROR(emit(std::string_view(buf.data(), output.pos)));
      frame_done_ = r == 0;
      // Done with this input once it is consumed and the buffer was not
      // filled (a full buffer may mean more output is waiting).
      if (input.pos == input.size && output.pos < output.size) return absl::OkStatus();
    }
  }

  absl::Status End() override {
    if (seen_input_ && !frame_done_) {
      return absl::DataLossError("zstd stream ended before the end of its frame");
    }
    return absl::OkStatus();
  }

 private:
  ZSTD_DCtx* ctx_;
  bool frame_done_ = false;
  bool seen_input_ = false;
};

std::unique_ptr<Stage> NewStage(std::string_view coding) {
  if (coding == "gzip" || coding == "x-gzip") return std::make_unique<ZlibStage>(true);
  if (coding == "deflate") return std::make_unique<ZlibStage>(false);
  if (coding == "br") return std::make_unique<BrotliStage>();
  if (coding == "zstd") return std::make_unique<ZstdStage>();
  if (coding == "identity") return std::make_unique<IdentityStage>();
  return nullptr;
}

class ChainDecoder final : public ContentDecoder {
 public:
  ChainDecoder(std::vector<std::unique_ptr<Stage>> stages, const DecodeLimits& limits)
      : stages_(std::move(stages)), limits_(limits) {
    intermediate_bytes_.assign(stages_.size(), 0);
  }

  absl::Status Feed(std::string_view chunk, std::string* out) override {
    if (!stopped_.ok()) return stopped_;
    out_ = out;
    input_ += static_cast<int64_t>(chunk.size());
    return Stop(Push(0, chunk));
  }

  absl::Status Finish(std::string* out) override {
    if (!stopped_.ok()) return stopped_;
    out_ = out;
    for (size_t i = 0; i < stages_.size(); ++i) RETURN_IF_ERROR(Stop(stages_[i]->End()));
    return absl::OkStatus();
  }

  int64_t input_bytes() const override { return input_; }
  int64_t output_bytes() const override { return output_; }

 private:
  absl::Status Stop(absl::Status s) {
    if (!s.ok()) stopped_ = s;
    return s;
  }

  // Push runs `in` through stage i and on to the sink.
  absl::Status Push(size_t i, std::string_view in) {
    if (i == stages_.size()) return Sink(in);
    return stages_[i]->Decode(in, [this, i](std::string_view piece) -> absl::Status {
      if (i + 1 < stages_.size()) {
        intermediate_bytes_[i] += static_cast<int64_t>(piece.size());
        if (intermediate_bytes_[i] > limits_.max_output_bytes) {
          return absl::ResourceExhaustedError(absl::StrCat(
              "decoded body exceeds ", limits_.max_output_bytes, " bytes (nested coding)"));
        }
      }
      return Push(i + 1, piece);
    });
  }

  absl::Status Sink(std::string_view piece) {
    const int64_t room = limits_.max_output_bytes - output_;
    if (static_cast<int64_t>(piece.size()) > room) {
      out_->append(piece.data(), static_cast<size_t>(std::max<int64_t>(room, 0)));
      output_ = limits_.max_output_bytes;
      return absl::ResourceExhaustedError(
          absl::StrCat("decoded body exceeds ", limits_.max_output_bytes, " bytes"));
    }
    out_->append(piece.data(), piece.size());
    output_ += static_cast<int64_t>(piece.size());
    if (output_ > limits_.ratio_floor_bytes &&
        static_cast<double>(output_) > limits_.max_ratio * static_cast<double>(input_)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "compression ratio above ", limits_.max_ratio, " (", output_, " bytes from ", input_, ")"));
    }
    return absl::OkStatus();
  }

  std::vector<std::unique_ptr<Stage>> stages_;
  const DecodeLimits limits_;
  std::vector<int64_t> intermediate_bytes_;
  std::string* out_ = nullptr;
  int64_t input_ = 0;
  int64_t output_ = 0;
  absl::Status stopped_;
};

}  // namespace

std::vector<std::string> ParseContentEncoding(std::string_view header_value) {
  std::vector<std::string> codings;
  for (absl::string_view part : absl::StrSplit(Av(header_value), ',')) {
    std::string coding = absl::AsciiStrToLower(absl::StripAsciiWhitespace(part));
    if (coding.empty() || coding == "identity") continue;
    codings.push_back(std::move(coding));
  }
  return codings;
}

bool IsSupportedCoding(std::string_view coding) { return NewStage(coding) != nullptr; }

absl::StatusOr<std::unique_ptr<ContentDecoder>> ContentDecoder::Create(
    std::string_view content_encoding, const DecodeLimits& limits) {
  std::vector<std::string> codings = ParseContentEncoding(content_encoding);
  std::vector<std::unique_ptr<Stage>> stages;
  // Codings are listed in the order applied: decode from the last.
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    std::unique_ptr<Stage> stage = NewStage(*it);
    if (stage == nullptr) {
      return absl::UnimplementedError(absl::StrCat("unsupported content coding \"", *it, "\""));
    }
    stages.push_back(std::move(stage));
  }
  return std::make_unique<ChainDecoder>(std::move(stages), limits);
}

DecodedBody DecodeBody(std::string_view content_encoding, std::string_view body,
                       const DecodeLimits& limits, bool input_complete) {
  DecodedBody result;
  absl::StatusOr<std::unique_ptr<ContentDecoder>> decoder =
      ContentDecoder::Create(content_encoding, limits);
  if (!decoder.ok()) {
    result.status = decoder.status();
    return result;
  }
  result.status = (*decoder)->Feed(body, &result.data);
  if (result.status.ok() && input_complete) result.status = (*decoder)->Finish(&result.data);
  return result;
}

}  // namespace understudy::encoding
