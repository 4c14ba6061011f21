// shadow/headers.h (internal to shadow/)
// Which request headers are never sent to an upstream or kept in a record.
#ifndef UNDERSTUDY_SHADOW_HEADERS_H_
#define UNDERSTUDY_SHADOW_HEADERS_H_

#include <string_view>

#include "shadow/shadow.h"

namespace understudy::shadow::internal {

// IsCredentialHeader: authorization, proxy-authorization, x-api-key,
// api-key, cookie, set-cookie, or either upstream's auth_header. `name` is
// lower-case.
bool IsCredentialHeader(std::string_view name, const ShadowConfig& config);

// IsTransportHeader: pseudo-headers (":path"), hop-by-hop headers,
// content-length, host, expect and accept-encoding (the client negotiates
// its own encoding and decodes it).
bool IsTransportHeader(std::string_view name);

// IsInternalHeader: x-envoy-* and x-understudy-*.
bool IsInternalHeader(std::string_view name);

}  // namespace understudy::shadow::internal

#endif  // UNDERSTUDY_SHADOW_HEADERS_H_
