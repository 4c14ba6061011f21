// sidecar/stats.h
// Counters the ext_proc service keeps (Envoy-style: tests assert on these,
// not on logs; the metrics endpoint exports them).
//
// Thread safety: every counter is an atomic; read and bump from any thread.
#ifndef UNDERSTUDY_SIDECAR_STATS_H_
#define UNDERSTUDY_SIDECAR_STATS_H_

#include <atomic>
#include <cstdint>

namespace understudy::sidecar {

struct Counter {
  std::atomic<uint64_t> value{0};
  void Add(uint64_t n = 1) { value.fetch_add(n, std::memory_order_relaxed); }
  uint64_t Get() const { return value.load(std::memory_order_relaxed); }
};

struct Gauge {
  std::atomic<int64_t> value{0};
  void Add(int64_t n) { value.fetch_add(n, std::memory_order_relaxed); }
  int64_t Get() const { return value.load(std::memory_order_relaxed); }
};

struct ExtProcStats {
  Counter streams_started;
  Counter streams_finished;
  Gauge streams_active;
  Counter streams_cancelled;       // Envoy's normal RST at the end, or a client reset
  Counter messages_received;
  Counter replies_sent;
  Counter observability_messages;  // received with observability_mode=true (never answered)
  Counter spurious_messages;       // out of order (FailedPrecondition)
  Counter malformed_messages;      // protobuf that does not parse
  Counter unknown_messages;        // no request arm set
  Counter route_production;        // route decisions per arm
  Counter route_candidate;
  Counter bodies_truncated;
  Counter exchanges_submitted;
  Counter exchanges_dropped;       // pipeline queue full
  Counter feedback_requests;       // POSTs to the feedback path seen by any stream
  Counter out_of_scope_path;       // requests that are not model calls (traffic_scope.h):
  Counter out_of_scope_method;     //   no route for the path / not for the method
  Counter requests_shaped;         // routed requests reshaped for their arm (shadow/shaping.h)
  Counter shaping_failures;        // bodies that could not be reshaped (sent unchanged)
  Counter requests_translated;     // sent to an arm in another provider's API, translated
  Counter requests_untranslatable; // meant for such an arm, kept on production
  Counter translation_failures;    // answers that could not be translated back
  // The candidate's per-request fallback (sidecar/fallback.h): retries on
  // production restored to the client's request; retries with no plan to
  // restore (refused, 502); retries refused because fallback is off.
  Counter fallbacks_restored;
  Counter fallbacks_no_plan;
  Counter fallbacks_off;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_STATS_H_
