// sidecar/stream_session.h
// The per-stream ext_proc state machine, free of gRPC so it can be tested
// message by message. One StreamSession lives for one gRPC Process stream,
// i.e. one HTTP request/response pair (docs/extproc.md §3.1).
//
// It decides the arm on request_headers (route and full roles), produces
// exactly the replies Envoy expects for each processing mode (none in
// observability mode), rejects out-of-order messages, and assembles the
// exchange (observe and full roles).
//
// Thread safety: none; the reactor calls it from one read callback at a time.
#ifndef UNDERSTUDY_SIDECAR_STREAM_SESSION_H_
#define UNDERSTUDY_SIDECAR_STREAM_SESSION_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "envoy/service/ext_proc/v3/external_processor.pb.h"
#include "rollout/router.h"
#include "shadow/shadow.h"
#include "shadow/shaping.h"
#include "translate/translate.h"
#include "sidecar/fallback.h"
#include "sidecar/feedback.h"
#include "sidecar/stats.h"
#include "sidecar/traffic_scope.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::sidecar {

// What the Envoy filter that opened the stream uses it for (gRPC initial
// metadata `x-understudy-role`, absent → kFull). kAttempt is the upstream
// filter on the candidate's fallback cluster: it sees every attempt of a
// candidate-arm request and restores the client's request when Envoy retries
// it on production (sidecar/fallback.h).
enum class StreamRole { kRoute, kObserve, kFull, kAttempt };

// ParseStreamRole maps the metadata value; unknown values are an error.
absl::StatusOr<StreamRole> ParseStreamRole(std::string_view value);

inline constexpr std::string_view kArmHeader = "x-understudy-arm";
inline constexpr std::string_view kRoleMetadata = "x-understudy-role";
inline constexpr std::string_view kRequestIdHeader = "x-request-id";
// Set on a request that was meant for an arm speaking another API but could
// not be translated (it is served by production); the value says why.
inline constexpr std::string_view kUntranslatableHeader = "x-understudy-untranslatable";
// Envoy's attempt number on an upstream request (route or virtual host
// include_attempt_count_in_request): 1 for the first try.
inline constexpr std::string_view kAttemptCountHeader = "x-envoy-attempt-count";

using BodySendMode =
    envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::BodySendMode;

struct SessionOptions {
  // Header whose value makes assignment sticky (e.g. "x-user-id"); empty or
  // absent on a request → x-request-id.
  std::string sticky_header;
  // Bodies beyond this many bytes per direction are truncated and flagged.
  int64_t max_body_bytes = 1 << 20;
  // Body modes assumed when Envoy sends no protocol_config (before 1.34).
  BodySendMode request_body_mode = envoy::extensions::filters::http::ext_proc::v3::
      ProcessingMode::STREAMED;
  BodySendMode response_body_mode = envoy::extensions::filters::http::ext_proc::v3::
      ProcessingMode::STREAMED;
  // Lower-case header names never captured (secrets), on top of the
  // built-in list (authorization, proxy-authorization, cookie, set-cookie,
  // x-api-key, api-key).
  std::vector<std::string> secret_headers;
  // Feedback through Envoy: a POST to `feedback_path` (query ignored) is not
  // routed; the route/full stream asks for its body (a mode_override to
  // BUFFERED when the filter sends no body), hands it to `on_feedback` and
  // answers with an immediate 204 — or 400/405/413 with a JSON error. The
  // observe stream ignores such requests. Empty path or no handler: off.
  std::string feedback_path;
  int64_t feedback_max_body_bytes = 16 << 10;
  // Called on the gRPC thread; must be quick and must not block. `client`
  // is the sticky header's value ("" when absent). Its status becomes the
  // reply: AlreadyExists 409, ResourceExhausted 429, Unavailable 503,
  // anything else 400.
  // `token` is the request's x-understudy-feedback-token ("" when absent).
  std::function<absl::Status(std::string_view body, std::string_view client,
                             std::string_view token)>
      on_feedback;
  // Signed feedback tokens (sidecar/feedback.h): with a signer, the route
  // (or full) stream adds x-understudy-feedback-token to the answer of every
  // in-scope request. The route filter skips response headers, so its
  // request_headers reply asks for them (a complete mode_override; needs
  // allow_mode_override, docs/extproc.md §3.9). Null: no tokens.
  std::shared_ptr<const FeedbackSigner> feedback_signer;
  // Which requests are model calls (sidecar/traffic_scope.h). A request out
  // of scope is routed to production (the arm header is still set, so a
  // client-sent one never routes), is not recorded, and is counted by
  // reason on the recording stream (observe or full). Null: every request
  // is in scope, its API unknown.
  std::shared_ptr<const TrafficScope> scope;
  // Per-arm request shaping (shadow/shaping.h) of the requests the route
  // (or full) stream sends to that arm; null: the arm's requests go as the
  // client sent them. The header edits (credentials, set/remove, :path) ride
  // on the request_headers reply; a body change asks for the body (a
  // mode_override to BUFFERED, so only these requests buffer theirs) and
  // replaces it in the request_body reply, content-length removed (a
  // filter that already sends STREAMED bodies has its chunks held back and
  // the whole new body sent with the last). A body that is not a JSON
  // object, or larger than max_body_bytes while streamed, is forwarded
  // unchanged and counted (ExtProcStats::shaping_failures), as are bodies in
  // FULL_DUPLEX_STREAMED and BUFFERED_PARTIAL modes.
  std::shared_ptr<const shadow::UpstreamConfig> production_upstream;
  std::shared_ptr<const shadow::UpstreamConfig> candidate_upstream;
  // Per-request fallback (sidecar/fallback.h). With a registry, the route
  // (or full) stream records how to undo its edits of each request it sends
  // to the candidate, the attempt stream restores the client's request when
  // Envoy retries it on production, and the route and recording streams
  // learn that the answer is production's. Null: no attempt filter is
  // expected; an attempt stream then refuses retries (no plan).
  std::shared_ptr<FallbackRegistry> fallback;
  // routing.fallback: false makes the attempt stream refuse the retry with
  // the candidate's own status, so the client sees the candidate's failure.
  bool fallback_enabled = true;
};

// IsSecretHeader reports whether `name` (lower-case) is never stored.
bool IsSecretHeader(std::string_view name, const std::vector<std::string>& extra);

class StreamSession {
 public:
  StreamSession(StreamRole role, const SessionOptions& options,
                const rollout::Router& router, const Clock& clock, ExtProcStats& stats);

  // OnMessage handles one ProcessingRequest and appends the replies to send
  // (zero or one) to *replies. A non-OK status means the stream must be
  // closed with it: FailedPrecondition for an out-of-order message,
  // InvalidArgument for a message with no request part.
  [[nodiscard]] absl::Status OnMessage(
      const envoy::service::ext_proc::v3::ProcessingRequest& request,
      std::vector<envoy::service::ext_proc::v3::ProcessingResponse>* replies);

  // TakeCompletedExchange returns the exchange once the response has fully
  // arrived (observe and full roles only), then never again.
  std::optional<understudy::v1::Exchange> TakeCompletedExchange();

  // OnStreamEnd is called when the stream ends for any reason; it returns
  // the exchange if it was not taken yet and anything was observed, marked
  // incomplete when the response did not finish.
  std::optional<understudy::v1::Exchange> OnStreamEnd();

  StreamRole role() const { return role_; }
  // The arm decided on request_headers (route/full roles), if any.
  std::optional<understudy::v1::Arm> decided_arm() const { return decided_arm_; }

 private:
  struct Direction {
    bool headers_seen = false;
    bool trailers_seen = false;
    bool ended = false;
    bool any_body = false;
    BodySendMode mode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::NONE;
  };
  using ProcessingRequest = envoy::service::ext_proc::v3::ProcessingRequest;
  using ProcessingResponse = envoy::service::ext_proc::v3::ProcessingResponse;

  absl::Status OnHeaders(bool request_dir, const envoy::service::ext_proc::v3::HttpHeaders& h,
                         bool reply, std::vector<ProcessingResponse>* replies);
  absl::Status OnBody(bool request_dir, const envoy::service::ext_proc::v3::HttpBody& b,
                      bool reply, std::vector<ProcessingResponse>* replies);
  absl::Status OnTrailers(bool request_dir, const envoy::service::ext_proc::v3::HttpTrailers& t,
                          bool reply, std::vector<ProcessingResponse>* replies);
  void AppendBody(understudy::v1::HttpMessage* msg, const std::string& chunk);
  int64_t OffsetMicros() const;
  bool Records() const {
    return role_ != StreamRole::kRoute && role_ != StreamRole::kAttempt && !feedback_ &&
           !out_of_scope_;
  }
  // AskForAnswerHeaders marks the answer for a feedback token and, on the
  // route role, asks Envoy for its headers in the request_headers reply.
  void AskForAnswerHeaders(ProcessingResponse* out);
  void SignAnswer(envoy::service::ext_proc::v3::HeaderMutation* mutation);
  // RecordPlan adds the candidate-arm edits in `mutation` (and the client's
  // body, when the candidate's differs) to this request's fallback plan.
  void RecordPlan(const envoy::service::ext_proc::v3::HeaderMutation& mutation,
                  const std::string* client_body);
  // The attempt role: pass the candidate's attempt, restore a retry.
  absl::Status OnAttemptHeaders(bool request_dir, bool end_of_stream, bool reply,
                                std::vector<ProcessingResponse>* replies);
  bool IsFeedbackPath(std::string_view path) const;
  absl::Status OnFeedbackHeaders(bool end_of_stream, bool reply,
                                 std::vector<ProcessingResponse>* replies);
  void ImmediateReply(int status, std::string_view error_code, std::string_view message,
                      std::vector<ProcessingResponse>* replies);
  // ShapeRequestHeaders adds the arm's header edits to the request_headers
  // reply and, when its body must change, asks for the body. Returns the arm
  // the request goes to now: production while a translation waits for the
  // body, or when the request cannot be translated.
  understudy::v1::Arm ShapeRequestHeaders(understudy::v1::Arm arm, bool end_of_stream,
                                          ProcessingResponse* out);
  // The request_body reply of a request to translate: on success it moves
  // the request to the candidate (arm header, credentials, path, body).
  void TranslateRequestBody(const envoy::service::ext_proc::v3::HttpBody& b,
                            std::vector<ProcessingResponse>* replies);
  // The answer of a translated request, back into the client's API.
  void TranslateResponseHeaders(envoy::service::ext_proc::v3::HeaderMutation* mutation);
  void TranslateResponseBody(const envoy::service::ext_proc::v3::HttpBody& b,
                             std::vector<ProcessingResponse>* replies);
  void Untranslatable(std::string_view why, envoy::service::ext_proc::v3::HeaderMutation* mutation);
  static void ApplyEdits(const shadow::HeaderEdits& edits,
                         envoy::service::ext_proc::v3::HeaderMutation* mutation);
  static void SetHeader(envoy::service::ext_proc::v3::HeaderMutation* mutation,
                        std::string_view key, std::string_view value);
  // ShapeRequestBody answers a request_body message of a request whose body
  // is reshaped.
  void ShapeRequestBody(const envoy::service::ext_proc::v3::HttpBody& b,
                        std::vector<ProcessingResponse>* replies);

  const StreamRole role_;
  const SessionOptions& options_;
  const rollout::Router& router_;
  const Clock& clock_;
  ExtProcStats& stats_;

  bool started_ = false;
  absl::Time start_;
  Direction req_;
  Direction resp_;
  std::optional<understudy::v1::Arm> decided_arm_;
  bool feedback_ = false;            // this stream carries a feedback POST
  bool out_of_scope_ = false;        // not a model call: production, unrecorded
  bool feedback_answered_ = false;
  const shadow::UpstreamConfig* shape_body_ = nullptr;  // the arm whose body shaping is due
  std::string shape_buffer_;
  // Translation to another provider's API (shadow/shaping.h).
  compare::ApiKind api_ = compare::ApiKind::kUnknown;  // the client's, from the scope
  const shadow::UpstreamConfig* translate_up_ = nullptr;  // body translation due
  shadow::Translation translation_{};
  bool translated_ = false;  // the request went to the candidate translated
  std::string response_content_type_;
  struct Answer {
    std::string client_model;
    bool include_usage = false;
    bool sse = false;
    bool error = false;   // an HTTP error answer
    bool failed = false;  // translation gave up: the rest passes as sent
    std::string buffer;   // a JSON answer, held until its end
    std::unique_ptr<translate::StreamTranslator> stream;
  } answer_;
  std::string feedback_body_;
  std::string feedback_client_;      // the sticky header's value on a feedback POST
  std::string feedback_token_;       // x-understudy-feedback-token on the request
  bool sign_answer_ = false;         // add a feedback token to the answer
  // Fallback (sidecar/fallback.h): the client's request headers of a
  // candidate-arm request (route role), the plan so far, and on the attempt
  // role the attempt number and the client's body to put back.
  std::vector<std::pair<std::string, std::string>> client_headers_;
  std::optional<FallbackPlan> plan_;
  int attempt_ = 0;
  std::optional<std::string> restore_body_;
  understudy::v1::Exchange exchange_;
  bool exchange_taken_ = false;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_STREAM_SESSION_H_
