#include "sidecar/feedback.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json_util.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace understudy::sidecar {

absl::StatusOr<understudy::v1::Feedback> ParseFeedbackJson(std::string_view raw) {
  ASSIGN_OR_RETURN(nlohmann::json body, ParseJsonObject(raw));
  RETURN_IF_ERROR(CheckJsonFields(body, {"request_id", "score", "comment"}));
  ASSIGN_OR_RETURN(std::string request_id, JsonRequiredString(body, "request_id"));
  if (request_id.size() > 512) {
    return absl::InvalidArgumentError("request_id: longer than 512 bytes");
  }
  if (request_id.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("request_id: must not contain NUL");
  }
  auto it = body.find("score");
  if (it == body.end() || it->is_null()) {
    return absl::InvalidArgumentError(
        "score: required (a number in [0,1], \"up\"/\"down\" or true/false)");
  }
  double score = 0;
  if (it->is_boolean()) {
    score = it->get<bool>() ? 1.0 : 0.0;
  } else if (it->is_number()) {
    score = it->get<double>();
    if (!(score >= 0 && score <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("score: must be in [0,1], got ", DumpJson(*it)));
    }
  } else if (it->is_string() && absl::EqualsIgnoreCase(it->get<std::string>(), "up")) {
    score = 1.0;
  } else if (it->is_string() && absl::EqualsIgnoreCase(it->get<std::string>(), "down")) {
    score = 0.0;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("score: must be a number in [0,1], \"up\"/\"down\" or true/false, got ",
                     DumpJson(*it)));
  }
  ASSIGN_OR_RETURN(std::string comment, JsonOptionalString(body, "comment", ""));
  if (comment.size() > 4096) return absl::InvalidArgumentError("comment: longer than 4096 bytes");
  understudy::v1::Feedback fb;
  fb.set_request_id(request_id);
  fb.set_score(score);
  fb.set_comment(comment);
  return fb;
}

FeedbackLimiter::FeedbackLimiter(int64_t per_minute, const Clock& clock, size_t max_clients)
    : per_minute_(per_minute), clock_(clock), max_clients_(std::max<size_t>(max_clients, 1)) {}

bool FeedbackLimiter::Allow(std::string_view client) {
  if (per_minute_ <= 0) return true;
  const double capacity = static_cast<double>(per_minute_);
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = buckets_.try_emplace(std::string(client));
  Bucket& b = it->second;
  if (inserted) {
    b.tokens = capacity;
    b.last = now;
    order_.push_back(it->first);
  } else if (now > b.last) {
    b.tokens = std::min(capacity, b.tokens + capacity * absl::ToDoubleMinutes(now - b.last));
    b.last = now;
  }
  const bool allowed = b.tokens >= 1.0;
  if (allowed) b.tokens -= 1.0;
  // Forget the oldest clients past the cap (never the one just added: the
  // cap is at least 1). `b` is not used below, so erasing others is safe.
  while (order_.size() > max_clients_) {
    buckets_.erase(order_.front());
    order_.pop_front();
  }
  return allowed;
}

FeedbackSigner::FeedbackSigner(std::string key, absl::Duration ttl, const Clock& clock,
                               std::string verify_key)
    : key_(std::move(key)), verify_key_(std::move(verify_key)), ttl_(ttl), clock_(clock) {}

std::string FeedbackSigner::Signature(std::string_view key, std::string_view request_id,
                                      int64_t expiry) {
  // The version and a separator that cannot occur in an expiry keep
  // (id, expiry) pairs from colliding.
  const std::string message = absl::StrCat("understudy-feedback-v1\n", expiry, "\n", Av(request_id));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

std::string FeedbackSigner::Sign(std::string_view request_id) const {
  const int64_t expiry = absl::ToUnixSeconds(clock_.Now() + ttl_);
  return absl::StrCat("v1.", expiry, ".", Signature(key_, request_id, expiry));
}

absl::Status FeedbackSigner::Verify(std::string_view request_id, std::string_view token) const {
  auto denied = [](std::string_view why) {
    return absl::PermissionDeniedError(absl::StrCat("feedback: ", Av(why)));
  };
  if (token.empty()) {
    return denied(absl::StrCat("no ", Av(kFeedbackTokenHeader),
                               " header: send the token from the answer's headers"));
  }
  if (!absl::StartsWith(Av(token), "v1.")) return denied("malformed feedback token");
  std::string_view rest = token.substr(3);
  const size_t dot = rest.find('.');
  int64_t expiry = 0;
  if (dot == std::string_view::npos || !absl::SimpleAtoi(Av(rest.substr(0, dot)), &expiry)) {
    return denied("malformed feedback token");
  }
  const std::string_view given = rest.substr(dot + 1);
  auto signed_with = [&](std::string_view key) {
    const std::string want = Signature(key, request_id, expiry);
    return given.size() == want.size() &&
           CRYPTO_memcmp(given.data(), want.data(), want.size()) == 0;
  };
  if (!signed_with(key_) && (verify_key_.empty() || !signed_with(verify_key_))) {
    return denied("the feedback token was not issued for this request id");
  }
  if (absl::FromUnixSeconds(expiry) < clock_.Now()) {
    return denied("the feedback token has expired (feedback.token_ttl)");
  }
  return absl::OkStatus();
}

}  // namespace understudy::sidecar
