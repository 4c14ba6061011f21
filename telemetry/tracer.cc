// telemetry/tracer.cc
// Builds OTLP spans from exchanges, shadow calls, comparisons and rollout
// decisions. Everything here is CPU-only work on the caller's thread; the
// network is the exporter thread's business.
#include "telemetry/tracer.h"

#include <algorithm>
#include <functional>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "telemetry/span_exporter.h"

namespace understudy::telemetry {
namespace {

namespace otlp_trace = opentelemetry::proto::trace::v1;
namespace otlp_common = opentelemetry::proto::common::v1;
using Attributes = google::protobuf::RepeatedPtrField<otlp_common::KeyValue>;

constexpr uint32_t kFlagHasIsRemote = 0x100;
constexpr uint32_t kFlagIsRemote = 0x200;
constexpr size_t kMaxFindingEvents = 8;
constexpr size_t kMaxAttributeText = 256;

// ------------------------------------------------------------------ ids --

// One generator per thread: no lock, and ids from different threads do not
// collide because each generator is seeded independently.
std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    std::seed_seq seq{
        rd(),
        rd(),
        rd(),
        rd(),
        static_cast<unsigned>(std::hash<std::thread::id>()(std::this_thread::get_id())),
        static_cast<unsigned>(absl::GetCurrentTimeNanos())};
    return std::mt19937_64(seq);
  }());
  return rng;
}

template <size_t N>
void FillRandomNonZero(std::array<uint8_t, N>& id) {
  std::mt19937_64& rng = Rng();
  bool zero = true;
  while (zero) {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t v = rng();
      for (size_t j = 0; j < 8 && i + j < N; ++j) id[i + j] = static_cast<uint8_t>(v >> (8 * j));
    }
    zero = std::all_of(id.begin(), id.end(), [](uint8_t b) { return b == 0; });
  }
}

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * N, '0');
  for (size_t i = 0; i < N; ++i) {
    out[2 * i] = kDigits[id[i] >> 4];
    out[2 * i + 1] = kDigits[id[i] & 0x0f];
  }
  return out;
}

int LowerHexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

template <size_t N>
bool ParseHex(std::string_view s, std::array<uint8_t, N>& out) {
  if (s.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    int hi = LowerHexDigit(s[2 * i]);
    int lo = LowerHexDigit(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& id) {
  return std::all_of(id.begin(), id.end(), [](uint8_t b) { return b == 0; });
}

// TraceIdRatioSampled keeps a trace when the id's low 8 bytes, read as a
// number, fall below rate × 2^64: the same trace id gives the same answer
// in every process that samples this way.
bool TraceIdRatioSampled(const std::array<uint8_t, 16>& trace_id, double rate) {
  if (rate >= 1.0) return true;
  if (rate <= 0.0) return false;
  uint64_t v = 0;
  for (size_t i = 8; i < 16; ++i) v = (v << 8) | trace_id[i];
  const long double bound = static_cast<long double>(rate) * 18446744073709551616.0L;
  return static_cast<long double>(v) < bound;
}

// ----------------------------------------------------------- attributes --

void Put(Attributes* attrs, const char* key, std::string_view value) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(std::string(value));
}
void PutInt(Attributes* attrs, const std::string& key, int64_t value) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_int_value(value);
}
void PutDouble(Attributes* attrs, const std::string& key, double value) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_double_value(value);
}
void PutBool(Attributes* attrs, const char* key, bool value) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_bool_value(value);
}
void PutIfSet(Attributes* attrs, const char* key, std::string_view value) {
  if (!value.empty()) Put(attrs, key, value);
}

std::string Truncate(std::string_view s, size_t n = kMaxAttributeText) {
  if (s.size() <= n) return std::string(s);
  // Back up to a UTF-8 boundary so the attribute stays valid text.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return absl::StrCat(Av(s.substr(0, n)), "…");
}

// EnumLabel turns "VERDICT_MAJOR_DIFF" with prefix "VERDICT_" into "major_diff".
std::string EnumLabel(const std::string& name, std::string_view prefix) {
  std::string_view v = name;
  if (absl::StartsWith(Av(v), Av(prefix))) v.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(Av(v));
}

std::string ArmLabel(understudy::v1::Arm arm) {
  return EnumLabel(understudy::v1::Arm_Name(arm), "ARM_");
}

std::string SourceLabel(understudy::v1::ExchangeSource source) {
  return EnumLabel(understudy::v1::ExchangeSource_Name(source), "SOURCE_");
}

std::string_view PathOnly(std::string_view path) {
  size_t q = path.find_first_of("?#");
  return q == std::string_view::npos ? path : path.substr(0, q);
}

// ProviderFromPath guesses the GenAI provider from the API path:
// Anthropic's Messages API or OpenAI's Chat Completions / Responses.
std::string_view ProviderFromPath(std::string_view path) {
  std::string_view p = PathOnly(path);
  if (absl::EndsWith(Av(p), "/messages")) return "anthropic";
  if (absl::EndsWith(Av(p), "/chat/completions") || absl::EndsWith(Av(p), "/responses") ||
      absl::EndsWith(Av(p), "/completions")) {
    return "openai";
  }
  return "";
}

uint64_t MicrosToNanos(int64_t micros) {
  return micros <= 0 ? 0 : static_cast<uint64_t>(micros) * 1000u;
}

// SetTimes places a span on the exchange's timeline; unknown offsets
// (-1) collapse it to its start.
void SetTimes(const understudy::v1::Exchange& e, otlp_trace::Span* span) {
  int64_t start =
      e.start_unix_micros() > 0 ? e.start_unix_micros() : absl::ToUnixMicros(absl::Now());
  int64_t end_offset = std::max<int64_t>({e.end_offset_micros(), e.first_body_byte_offset_micros(),
                                          e.response_headers_offset_micros(), 0});
  span->set_start_time_unix_nano(MicrosToNanos(start));
  span->set_end_time_unix_nano(MicrosToNanos(start + end_offset));
  if (e.response_headers_offset_micros() >= 0) {
    otlp_trace::Span::Event* ev = span->add_events();
    ev->set_name("understudy.response_headers");
    ev->set_time_unix_nano(MicrosToNanos(start + e.response_headers_offset_micros()));
  }
  if (e.first_body_byte_offset_micros() >= 0) {
    otlp_trace::Span::Event* ev = span->add_events();
    ev->set_name("understudy.first_body_byte");
    ev->set_time_unix_nano(MicrosToNanos(start + e.first_body_byte_offset_micros()));
  }
}

bool IsErrorOutcome(std::string_view outcome) {
  return outcome == "server_error" || outcome == "timeout" || outcome == "transport" ||
         outcome == "invalid_body";
}

// ErrorType returns the error.type of a failed exchange, "" when it did
// not fail. 4xx are the caller's problem, not the exchange's, as in the
// HTTP server conventions.
std::string ErrorType(const understudy::v1::Exchange& e, std::string_view outcome) {
  if (IsErrorOutcome(outcome)) return std::string(outcome);
  if (!e.error().empty()) return "transport";
  if (e.status_code() >= 500) return absl::StrCat(e.status_code());
  if (e.status_code() == 0) return "no_response";
  return "";
}

void SetErrorStatus(const understudy::v1::Exchange& e, const std::string& error_type,
                    otlp_trace::Span* span) {
  if (error_type.empty()) return;
  Put(span->mutable_attributes(), "error.type", error_type);
  span->mutable_status()->set_code(otlp_trace::Status::STATUS_CODE_ERROR);
  if (!e.error().empty()) {
    span->mutable_status()->set_message(Truncate(e.error()));
  } else if (e.status_code() > 0) {
    span->mutable_status()->set_message(absl::StrCat("HTTP ", e.status_code()));
  } else {
    span->mutable_status()->set_message(error_type);
  }
}

void SetIds(const SpanContext& ctx, const SpanContext* parent, bool parent_remote,
            otlp_trace::Span* span) {
  span->set_trace_id(ctx.TraceIdBytes());
  span->set_span_id(ctx.SpanIdBytes());
  if (parent != nullptr) span->set_parent_span_id(parent->SpanIdBytes());
  span->set_flags(ctx.flags | kFlagHasIsRemote | (parent_remote ? kFlagIsRemote : 0));
}

void PutStateAttributes(Attributes* attrs, const std::string& prefix,
                        const understudy::v1::RolloutState& s) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(prefix + ".phase");
  kv->mutable_value()->set_string_value(
      EnumLabel(understudy::v1::RolloutPhase_Name(s.phase()), "PHASE_"));
  PutInt(attrs, prefix + ".stage", s.stage_index());
  PutDouble(attrs, prefix + ".weight_percent", s.weight_basis_points() / 100.0);
}

}  // namespace

// ----------------------------------------------------------- SpanContext --

bool SpanContext::valid() const { return !AllZero(trace_id) && !AllZero(span_id); }
std::string SpanContext::TraceIdHex() const { return Hex(trace_id); }
std::string SpanContext::SpanIdHex() const { return Hex(span_id); }
std::string SpanContext::TraceIdBytes() const {
  return std::string(reinterpret_cast<const char*>(trace_id.data()), trace_id.size());
}
std::string SpanContext::SpanIdBytes() const {
  return std::string(reinterpret_cast<const char*>(span_id.data()), span_id.size());
}
std::string SpanContext::Traceparent() const {
  if (!valid()) return "";
  std::array<uint8_t, 1> f{flags};
  return absl::StrCat("00-", Hex(trace_id), "-", Hex(span_id), "-", Hex(f));
}

std::optional<SpanContext> ParseTraceparent(std::string_view header) {
  // W3C Trace Context: version "-" trace-id "-" parent-id "-" trace-flags,
  // 2+1+32+1+16+1+2 = 55 characters; future versions may append "-...".
  std::string_view h = header;
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  std::array<uint8_t, 1> version{};
  if (!ParseHex(h.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (version[0] == 0 && h.size() != 55) return std::nullopt;
  if (version[0] != 0 && h.size() > 55 && h[55] != '-') return std::nullopt;
  SpanContext ctx;
  std::array<uint8_t, 1> flags{};
  if (!ParseHex(h.substr(3, 32), ctx.trace_id) || !ParseHex(h.substr(36, 16), ctx.span_id) ||
      !ParseHex(h.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (!ctx.valid()) return std::nullopt;
  ctx.flags = flags[0];
  return ctx;
}

// ---------------------------------------------------------------- Tracer --

absl::StatusOr<std::unique_ptr<Tracer>> Tracer::Create(const TelemetryConfig& config) {
  if (!config.enabled) return Disabled();
  absl::StatusOr<std::unique_ptr<SpanTransport>> transport = NewOtlpTransport(config.otlp);
  if (!transport.ok()) return transport.status();
  auto exporter =
      std::make_unique<SpanExporter>(std::move(*transport), ExporterOptionsFrom(config));
  return std::make_unique<Tracer>(config, std::move(exporter));
}

std::unique_ptr<Tracer> Tracer::Disabled() { return std::unique_ptr<Tracer>(new Tracer()); }

Tracer::Tracer(const TelemetryConfig& config, std::unique_ptr<SpanExporter> exporter)
    : config_(config), exporter_(std::move(exporter)) {
  config_.remembered_exchanges = std::max<int64_t>(1, config_.remembered_exchanges);
}

Tracer::~Tracer() = default;  // the exporter's destructor flushes with its timeout

void Tracer::Remember(const std::string& request_id, const SpanContext& ctx) {
  if (request_id.empty()) return;
  absl::MutexLock lock(&lru_mu_);
  auto it = lru_index_.find(request_id);
  if (it != lru_index_.end()) {
    it->second->second = ctx;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(request_id, ctx);
  lru_index_[request_id] = lru_.begin();
  while (static_cast<int64_t>(lru_.size()) > config_.remembered_exchanges) {
    lru_index_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

std::optional<SpanContext> Tracer::LookupExchange(std::string_view request_id) const {
  absl::MutexLock lock(&lru_mu_);
  auto it = lru_index_.find(Av(request_id));
  if (it == lru_index_.end()) return std::nullopt;
  // A lookup does not refresh the entry: children arrive within seconds of
  // their exchange, and keeping Lookup read-only keeps this method const.
  return it->second->second;
}

void Tracer::Submit(otlp_trace::Span&& span) {
  spans_started_.fetch_add(1, std::memory_order_relaxed);
  exporter_->Enqueue(std::move(span));
}

SpanContext Tracer::OnExchange(const understudy::v1::Exchange& live, const ExchangeInfo& info) {
  if (!enabled()) return SpanContext();
  SpanContext ctx;
  std::optional<SpanContext> parent = ParseTraceparent(live.traceparent());
  if (parent.has_value()) {
    ctx.trace_id = parent->trace_id;
    ctx.flags = parent->flags;
  } else {
    FillRandomNonZero(ctx.trace_id);
    ctx.flags = TraceIdRatioSampled(ctx.trace_id, config_.otlp.sample_rate) ? 0x01 : 0x00;
  }
  FillRandomNonZero(ctx.span_id);
  Remember(live.request_id(), ctx);
  if (!ctx.sampled()) {
    spans_not_sampled_.fetch_add(1, std::memory_order_relaxed);
    return ctx;
  }

  otlp_trace::Span span;
  SetIds(ctx, parent.has_value() ? &*parent : nullptr, parent.has_value(), &span);
  span.set_name(info.request_model.empty() ? "chat" : absl::StrCat("chat ", info.request_model));
  span.set_kind(otlp_trace::Span::SPAN_KIND_SERVER);
  SetTimes(live, &span);

  Attributes* a = span.mutable_attributes();
  Put(a, "understudy.arm", ArmLabel(live.arm()));
  Put(a, "understudy.source", SourceLabel(live.source()));
  PutInt(a, "understudy.stage", info.stage_index);
  PutDouble(a, "understudy.weight_percent", info.weight_percent);
  PutIfSet(a, "understudy.request_id", live.request_id());
  PutIfSet(a, "understudy.outcome", info.outcome);
  if (info.cost >= 0) PutDouble(a, "understudy.cost", info.cost);
  if (live.incomplete()) PutBool(a, "understudy.incomplete", true);
  if (live.has_fallback()) {
    // The candidate failed and production answered (docs/extproc.md,
    // "Fallback to production"): visible on the span and as an event.
    PutBool(a, "understudy.fallback", true);
    PutInt(a, "understudy.fallback.candidate_status", live.fallback().candidate_status());
    otlp_trace::Span::Event* ev = span.add_events();
    ev->set_time_unix_nano(span.start_time_unix_nano());
    ev->set_name("understudy.fallback");
    PutInt(ev->mutable_attributes(), "understudy.fallback.candidate_status",
           live.fallback().candidate_status());
  }
  PutIfSet(a, "http.request.method", live.method());
  PutIfSet(a, "url.path", PathOnly(live.path()));
  if (live.status_code() > 0) PutInt(a, "http.response.status_code", live.status_code());
  Put(a, "gen_ai.operation.name", "chat");
  std::string_view provider = ProviderFromPath(live.path());
  if (!provider.empty()) {
    Put(a, "gen_ai.provider.name", provider);
    Put(a, "gen_ai.system", provider);  // the older name, still read by many backends
  }
  PutIfSet(a, "gen_ai.request.model", info.request_model);
  PutIfSet(a, "gen_ai.response.model", info.response_model);
  if (info.input_tokens >= 0) PutInt(a, "gen_ai.usage.input_tokens", info.input_tokens);
  if (info.output_tokens >= 0) PutInt(a, "gen_ai.usage.output_tokens", info.output_tokens);
  SetErrorStatus(live, ErrorType(live, info.outcome), &span);
  for (const ExchangeInfo::Event& e : info.events) {
    otlp_trace::Span::Event* ev = span.add_events();
    ev->set_time_unix_nano(span.end_time_unix_nano());
    ev->set_name(e.name);
    for (const auto& [key, value] : e.attributes) Put(ev->mutable_attributes(), key.c_str(), value);
  }

  Submit(std::move(span));
  return ctx;
}

bool Tracer::ChildSpan(std::string_view request_id, otlp_trace::Span* span) {
  if (!enabled()) return false;
  SpanContext ctx;
  const std::optional<SpanContext> parent = LookupExchange(request_id);
  if (parent.has_value()) {
    ctx.trace_id = parent->trace_id;
    ctx.flags = parent->flags;
  } else {
    FillRandomNonZero(ctx.trace_id);
    ctx.flags = TraceIdRatioSampled(ctx.trace_id, config_.otlp.sample_rate) ? 0x01 : 0x00;
  }
  if (!ctx.sampled()) {
    spans_not_sampled_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  FillRandomNonZero(ctx.span_id);
  SetIds(ctx, parent.has_value() ? &*parent : nullptr, false, span);
  return true;
}

void Tracer::OnShadow(const understudy::v1::Exchange& shadow) {
  otlp_trace::Span span;
  if (!ChildSpan(shadow.request_id(), &span)) return;
  span.set_name("understudy.shadow");
  span.set_kind(otlp_trace::Span::SPAN_KIND_CLIENT);
  SetTimes(shadow, &span);

  Attributes* a = span.mutable_attributes();
  PutIfSet(a, "understudy.request_id", shadow.request_id());
  Put(a, "understudy.source", SourceLabel(shadow.source()));
  Put(a, "understudy.target_arm", ArmLabel(shadow.arm()));
  PutIfSet(a, "http.request.method", shadow.method());
  PutIfSet(a, "url.path", PathOnly(shadow.path()));
  if (shadow.status_code() > 0) PutInt(a, "http.response.status_code", shadow.status_code());
  if (shadow.end_offset_micros() >= 0) {
    PutDouble(a, "understudy.latency_ms", shadow.end_offset_micros() / 1000.0);
  }
  if (shadow.first_body_byte_offset_micros() >= 0) {
    PutDouble(a, "understudy.ttft_ms", shadow.first_body_byte_offset_micros() / 1000.0);
  }
  if (shadow.incomplete()) PutBool(a, "understudy.incomplete", true);
  Put(a, "gen_ai.operation.name", "chat");
  std::string_view provider = ProviderFromPath(shadow.path());
  if (!provider.empty()) {
    Put(a, "gen_ai.provider.name", provider);
    Put(a, "gen_ai.system", provider);
  }
  PutIfSet(a, "understudy.error", Truncate(shadow.error()));
  SetErrorStatus(shadow, ErrorType(shadow, ""), &span);

  Submit(std::move(span));
}

void Tracer::OnComparison(const understudy::v1::Comparison& c) {
  otlp_trace::Span span;
  if (!ChildSpan(c.request_id(), &span)) return;
  span.set_name("understudy.compare");
  span.set_kind(otlp_trace::Span::SPAN_KIND_INTERNAL);
  const uint64_t at = MicrosToNanos(c.time_unix_micros() > 0 ? c.time_unix_micros()
                                                             : absl::ToUnixMicros(absl::Now()));
  span.set_start_time_unix_nano(at);
  span.set_end_time_unix_nano(at);

  Attributes* a = span.mutable_attributes();
  PutIfSet(a, "understudy.request_id", c.request_id());
  Put(a, "understudy.verdict", EnumLabel(understudy::v1::Verdict_Name(c.verdict()), "VERDICT_"));
  PutIfSet(a, "understudy.compare.request_kind", c.request_kind());
  if (c.live_arm() != understudy::v1::ARM_UNSPECIFIED) {
    Put(a, "understudy.compare.live_arm", ArmLabel(c.live_arm()));
  }
  PutIfSet(a, "understudy.production.model", c.production_model());
  PutIfSet(a, "understudy.candidate.model", c.candidate_model());
  PutDouble(a, "understudy.production.cost", c.production_cost());
  PutDouble(a, "understudy.candidate.cost", c.candidate_cost());
  PutDouble(a, "understudy.production.latency_ms", c.production_latency_micros() / 1000.0);
  PutDouble(a, "understudy.candidate.latency_ms", c.candidate_latency_micros() / 1000.0);
  if (c.production_ttft_micros() > 0) {
    PutDouble(a, "understudy.production.ttft_ms", c.production_ttft_micros() / 1000.0);
  }
  if (c.candidate_ttft_micros() > 0) {
    PutDouble(a, "understudy.candidate.ttft_ms", c.candidate_ttft_micros() / 1000.0);
  }
  for (const understudy::v1::ComparatorScore& s : c.scores()) {
    if (!s.applicable() || s.name().empty()) continue;
    PutDouble(a, absl::StrCat("understudy.compare.score.", s.name()), s.score());
  }
  int64_t major = 0;
  for (const understudy::v1::Finding& f : c.findings()) major += f.major() ? 1 : 0;
  PutInt(a, "understudy.compare.findings", c.findings_size());
  PutInt(a, "understudy.compare.major_findings", major);

  // The most important findings as events: major ones first, then those
  // noise does not explain, in their original order otherwise. Traces never
  // carry user content, whatever storage.privacy.body_mode says: the
  // production/candidate texts and the message (which quotes them) are left
  // out; kind and path (a JSON path or a position) say where to look.
  std::vector<const understudy::v1::Finding*> order;
  order.reserve(c.findings_size());
  for (const understudy::v1::Finding& f : c.findings()) order.push_back(&f);
  std::stable_sort(order.begin(), order.end(), [](const auto* x, const auto* y) {
    if (x->major() != y->major()) return x->major();
    return !x->noise_explained() && y->noise_explained();
  });
  if (order.size() > kMaxFindingEvents) {
    span.set_dropped_events_count(static_cast<uint32_t>(order.size() - kMaxFindingEvents));
    order.resize(kMaxFindingEvents);
  }
  for (const understudy::v1::Finding* f : order) {
    otlp_trace::Span::Event* ev = span.add_events();
    ev->set_name("understudy.finding");
    ev->set_time_unix_nano(at);
    Attributes* ea = ev->mutable_attributes();
    Put(ea, "understudy.finding.kind", f->kind());
    PutIfSet(ea, "understudy.finding.path", Truncate(f->path()));
    PutBool(ea, "understudy.finding.major", f->major());
    PutBool(ea, "understudy.finding.noise_explained", f->noise_explained());
  }

  Submit(std::move(span));
}

void Tracer::OnDecision(const understudy::v1::Decision& d,
                        const std::vector<understudy::v1::RevisitTrigger>& revisit) {
  if (!enabled()) return;
  SpanContext ctx;
  FillRandomNonZero(ctx.trace_id);
  FillRandomNonZero(ctx.span_id);
  ctx.flags = 0x01;  // decisions are rare and always worth keeping

  otlp_trace::Span span;
  SetIds(ctx, nullptr, false, &span);
  span.set_name("understudy.rollout.decision");
  span.set_kind(otlp_trace::Span::SPAN_KIND_INTERNAL);
  const uint64_t at = MicrosToNanos(d.time_unix_micros() > 0 ? d.time_unix_micros()
                                                             : absl::ToUnixMicros(absl::Now()));
  span.set_start_time_unix_nano(at);
  span.set_end_time_unix_nano(at);

  Attributes* a = span.mutable_attributes();
  Put(a, "understudy.rollout.action", rollout::DecisionActionName(d.action()));
  PutIfSet(a, "understudy.rollout.actor", d.actor());
  PutIfSet(a, "understudy.rollout.reason", Truncate(d.reason(), 1024));
  PutStateAttributes(a, "understudy.rollout.from", d.from());
  PutStateAttributes(a, "understudy.rollout.to", d.to());
  PutInt(a, "understudy.rollout.version", d.to().version());
  PutInt(a, "understudy.rollout.rollbacks", d.to().rollbacks());

  for (const understudy::v1::GateEvaluation& g : d.gates()) {
    otlp_trace::Span::Event* ev = span.add_events();
    ev->set_name("understudy.rollout.gate");
    ev->set_time_unix_nano(at);
    Attributes* ea = ev->mutable_attributes();
    Put(ea, "understudy.gate.name", g.gate());
    Put(ea, "understudy.gate.outcome",
        EnumLabel(understudy::v1::GateOutcome_Name(g.outcome()), "GATE_"));
    PutDouble(ea, "understudy.gate.production_value", g.production_value());
    PutDouble(ea, "understudy.gate.candidate_value", g.candidate_value());
    PutDouble(ea, "understudy.gate.threshold", g.threshold());
    PutIfSet(ea, "understudy.gate.statistic", g.statistic());
    PutDouble(ea, "understudy.gate.statistic_value", g.statistic_value());
    PutDouble(ea, "understudy.gate.bound", g.bound());
    PutDouble(ea, "understudy.gate.p_value", g.p_value());
    PutInt(ea, "understudy.gate.production_samples", g.production_samples());
    PutInt(ea, "understudy.gate.candidate_samples", g.candidate_samples());
    // Why the judge waits: clusters (routing buckets) per arm and how much
    // clustering inflates the variance (docs/statistics.md §1).
    PutInt(ea, "understudy.gate.production_clusters", g.production_clusters());
    PutInt(ea, "understudy.gate.candidate_clusters", g.candidate_clusters());
    if (g.design_effect() > 0) PutDouble(ea, "understudy.gate.design_effect", g.design_effect());
    PutIfSet(ea, "understudy.gate.detail", Truncate(g.detail()));
  }

  for (const understudy::v1::RevisitTrigger& t : revisit) {
    otlp_trace::Span::Event* ev = span.add_events();
    ev->set_name("understudy.revisit");
    ev->set_time_unix_nano(at);
    Attributes* ea = ev->mutable_attributes();
    Put(ea, "understudy.revisit.kind", t.kind());
    PutIfSet(ea, "understudy.revisit.detail", Truncate(t.detail()));
    PutIfSet(ea, "understudy.revisit.action", Truncate(t.action()));
  }

  for (const std::string& request_id : d.trigger_request_ids()) {
    std::optional<SpanContext> target = LookupExchange(request_id);
    if (!target.has_value()) {
      span.set_dropped_links_count(span.dropped_links_count() + 1);
      continue;
    }
    otlp_trace::Span::Link* link = span.add_links();
    link->set_trace_id(target->TraceIdBytes());
    link->set_span_id(target->SpanIdBytes());
    link->set_flags(target->flags | kFlagHasIsRemote);
    Put(link->mutable_attributes(), "understudy.request_id", request_id);
  }

  Submit(std::move(span));
}

TracerStats Tracer::Stats() const {
  TracerStats s;
  s.spans_started = spans_started_.load();
  s.spans_not_sampled = spans_not_sampled_.load();
  if (exporter_ != nullptr) {
    ExporterStats e = exporter_->Stats();
    s.enqueued = e.enqueued;
    s.exported = e.exported;
    s.dropped = e.dropped;
    s.failed_batches = e.failed_batches;
    s.failed_spans = e.failed_spans;
    s.retries = e.retries;
    s.rejected_spans = e.rejected_spans;
    s.last_error = e.last_error;
  }
  return s;
}

bool Tracer::Flush(absl::Duration timeout) {
  return exporter_ == nullptr ? true : exporter_->Flush(timeout);
}

void Tracer::Shutdown(absl::Duration deadline) {
  if (exporter_ != nullptr) exporter_->Shutdown(deadline);
}

}  // namespace understudy::telemetry
