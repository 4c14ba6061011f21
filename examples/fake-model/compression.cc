#include "examples/fake-model/compression.h"

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include <cctype>
#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace understudy::fake_model {
namespace {

class GzipCompressor : public Compressor {
 public:
  GzipCompressor() {
    // windowBits 15 + 16: a gzip wrapper, as Content-Encoding: gzip requires.
    ok_ = deflateInit2(&z_, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~GzipCompressor() override {
    if (ok_) deflateEnd(&z_);
  }
  std::string Write(std::string_view data, bool flush) override {
    return Run(data, flush ? Z_SYNC_FLUSH : Z_NO_FLUSH);
  }
  std::string Finish() override { return Run({}, Z_FINISH); }

 private:
  std::string Run(std::string_view data, int mode) {
    std::string out;
    if (!ok_) return out;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));  // NOLINT
    z_.avail_in = static_cast<uInt>(data.size());
    char buffer[16384];
    while (true) {
      z_.next_out = reinterpret_cast<Bytef*>(buffer);
      z_.avail_out = sizeof(buffer);
      int rc = deflate(&z_, mode);
      out.append(buffer, sizeof(buffer) - z_.avail_out);
      if (rc == Z_STREAM_END || rc == Z_STREAM_ERROR) break;
      // Done when the input is consumed and deflate had output space left
      // (so nothing is pending for this flush mode).
      if (z_.avail_in == 0 && z_.avail_out != 0) break;
    }
    return out;
  }

  z_stream z_{};
  bool ok_ = false;
};

class BrotliCompressor : public Compressor {
 public:
  BrotliCompressor() : state_(BrotliEncoderCreateInstance(nullptr, nullptr, nullptr)) {
    if (state_ != nullptr) {
      // Quality 5: a fraction of the default's CPU for most of its ratio.
      BrotliEncoderSetParameter(state_, BROTLI_PARAM_QUALITY, 5);
      BrotliEncoderSetParameter(state_, BROTLI_PARAM_LGWIN, 22);
    }
  }
  ~BrotliCompressor() override {
    if (state_ != nullptr) BrotliEncoderDestroyInstance(state_);
  }
  std::string Write(std::string_view data, bool flush) override {
    return Run(data, flush ? BROTLI_OPERATION_FLUSH : BROTLI_OPERATION_PROCESS);
  }
  std::string Finish() override { return Run({}, BROTLI_OPERATION_FINISH); }

 private:
  std::string Run(std::string_view data, BrotliEncoderOperation op) {
    std::string out;
    if (state_ == nullptr) return out;
    size_t avail_in = data.size();
    const uint8_t* next_in = reinterpret_cast<const uint8_t*>(data.data());
    uint8_t buffer[16384];
    while (true) {
      size_t avail_out = sizeof(buffer);
      uint8_t* next_out = buffer;
      if (!BrotliEncoderCompressStream(state_, op, &avail_in, &next_in, &avail_out, &next_out,
                                       nullptr)) {
        break;
      }
      out.append(reinterpret_cast<char*>(buffer), sizeof(buffer) - avail_out);
      const bool finished =
          op == BROTLI_OPERATION_FINISH ? BrotliEncoderIsFinished(state_) : avail_in == 0;
      if (finished && !BrotliEncoderHasMoreOutput(state_)) break;
    }
    return out;
  }

  BrotliEncoderState* state_;
};

class ZstdCompressor : public Compressor {
 public:
  explicit ZstdCompressor(size_t pledged = ZSTD_CONTENTSIZE_UNKNOWN) : cctx_(ZSTD_createCCtx()) {
    if (cctx_ != nullptr) {
      ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, 3);
      ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
      if (pledged != ZSTD_CONTENTSIZE_UNKNOWN) ZSTD_CCtx_setPledgedSrcSize(cctx_, pledged);
    }
  }
  ~ZstdCompressor() override {
    if (cctx_ != nullptr) ZSTD_freeCCtx(cctx_);
  }
  std::string Write(std::string_view data, bool flush) override {
    return Run(data, flush ? ZSTD_e_flush : ZSTD_e_continue);
  }
  std::string Finish() override { return Run({}, ZSTD_e_end); }

 private:
  std::string Run(std::string_view data, ZSTD_EndDirective mode) {
    std::string out;
    if (cctx_ == nullptr) return out;
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    std::vector<char> buffer(ZSTD_CStreamOutSize());
    while (true) {
      ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
      size_t remaining = ZSTD_compressStream2(cctx_, &o, &in, mode);
      if (ZSTD_isError(remaining)) break;
      out.append(buffer.data(), o.pos);
      const bool done = mode == ZSTD_e_continue ? in.pos == in.size : remaining == 0;
      if (done) break;
    }
    return out;
  }

  ZSTD_CCtx* cctx_;
};

}  // namespace

const char* CodingName(Coding coding) {
  switch (coding) {
    case Coding::kGzip:
      return "gzip";
    case Coding::kBrotli:
      return "br";
    case Coding::kZstd:
      return "zstd";
    case Coding::kIdentity:
      break;
  }
  return "identity";
}

Coding NegotiateCoding(std::string_view accept_encoding, bool stream) {
  // q per supported coding; -1 = not mentioned.
  double q_gzip = -1, q_br = -1, q_zstd = -1, q_star = -1;
  const absl::string_view accept(accept_encoding.data(), accept_encoding.size());
  for (absl::string_view item : absl::StrSplit(accept, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(item, ';');
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
    if (name.empty()) continue;
    double q = 1.0;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view p = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&p, "q=") || absl::ConsumePrefix(&p, "Q=")) {
        double v = 0;
        if (absl::SimpleAtod(p, &v)) q = v;
      }
    }
    if (name == "gzip" || name == "x-gzip") {
      q_gzip = q;
    } else if (name == "br") {
      q_br = q;
    } else if (name == "zstd") {
      q_zstd = q;
    } else if (name == "*") {
      q_star = q;
    }
  }
  // "*" covers the codings not named explicitly.
  if (q_star >= 0) {
    if (q_gzip < 0) q_gzip = q_star;
  }
  struct Candidate {
    Coding coding;
    double q;
  };
  const Candidate body_order[] = {
      {Coding::kBrotli, q_br}, {Coding::kZstd, q_zstd}, {Coding::kGzip, q_gzip}};
  const Candidate stream_order[] = {
      {Coding::kGzip, q_gzip}, {Coding::kBrotli, q_br}, {Coding::kZstd, q_zstd}};
  const Candidate* order = stream ? stream_order : body_order;
  Coding best = Coding::kIdentity;
  double best_q = 0;
  for (int i = 0; i < 3; ++i) {
    if (order[i].q > best_q) {
      best = order[i].coding;
      best_q = order[i].q;
    }
  }
  return best;
}

std::unique_ptr<Compressor> NewCompressor(Coding coding) {
  switch (coding) {
    case Coding::kGzip:
      return std::make_unique<GzipCompressor>();
    case Coding::kBrotli:
      return std::make_unique<BrotliCompressor>();
    case Coding::kZstd:
      return std::make_unique<ZstdCompressor>();
    case Coding::kIdentity:
      break;
  }
  return nullptr;
}

std::string CompressAll(Coding coding, std::string_view data) {
  if (coding == Coding::kIdentity) return std::string(data);
  std::unique_ptr<Compressor> c =
      coding == Coding::kZstd ? std::make_unique<ZstdCompressor>(data.size())  // size in header
                              : NewCompressor(coding);
  std::string out = c->Write(data, /*flush=*/false);
  out += c->Finish();
  return out;
}

}  // namespace understudy::fake_model
