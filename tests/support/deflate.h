// tests/support/deflate.h: compresses test bodies with zlib (link ZLIB::ZLIB).
#ifndef UNDERSTUDY_TESTS_SUPPORT_DEFLATE_H_
#define UNDERSTUDY_TESTS_SUPPORT_DEFLATE_H_

#include <zlib.h>

#include <string>
#include <string_view>

namespace understudy::testing {

// Deflate compresses `in`; window_bits 31 = gzip (the default), 15 = zlib,
// -15 = raw deflate.
inline std::string Deflate(std::string_view in, int window_bits = 31, int level = 6) {
  z_stream zs{};
  deflateInit2(&zs, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_SUPPORT_DEFLATE_H_
