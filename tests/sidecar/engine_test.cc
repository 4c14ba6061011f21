// The exchange pipeline: outcomes reach the judge's windows, feedback joins
// its exchange whichever comes first, mirrored answers are compared and
// stored, noise copies calibrate the noise model.
#include "sidecar/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sidecar/feedback.h"
#include "tests/common/test_util.h"
#include "tests/support/deflate.h"
#include "tests/storage/fake_store.h"

namespace understudy::sidecar {
namespace {

namespace v1 = understudy::v1;
using ::understudy::testing::StatusIs;

std::string OpenAiAnswer(const std::string& text, const std::string& model = "gpt-4o") {
  return absl::StrCat(R"({"id":"c1","object":"chat.completion","model":")", model,
                      R"(","choices":[{"index":0,"message":{"role":"assistant","content":")", text,
                      R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":500}})");
}

v1::Exchange Live(const std::string& id, v1::Arm arm, int status, const std::string& body) {
  v1::Exchange e;
  e.set_request_id(id);
  e.set_arm(arm);
  e.set_source(v1::SOURCE_LIVE);
  e.set_method("POST");
  e.set_path("/v1/chat/completions");
  e.set_status_code(status);
  e.mutable_request()->set_body(R"({"model":"gpt-4o","messages":[{"role":"user","content":"capital of France?"}]})");
  e.mutable_request()->set_complete(true);
  e.mutable_response()->set_body(body);
  e.mutable_response()->set_complete(true);
  e.set_start_unix_micros(1700000000000000);
  e.set_response_headers_offset_micros(100000);
  e.set_first_body_byte_offset_micros(120000);
  e.set_end_offset_micros(400000);
  return e;
}

// FakeShadow answers every mirror at once (on the caller's thread) with a
// canned candidate body, and a noise copy when asked.
class FakeShadow final : public ShadowPort {
 public:
  void MaybeMirror(const v1::Exchange& live, std::function<void(MirrorResult)> done) override {
    if (live.arm() != v1::ARM_PRODUCTION) return;
    MirrorResult r;
    r.kind = MirrorKind::kShadow;
    r.exchange = live;
    r.exchange.set_source(v1::SOURCE_SHADOW);
    r.exchange.set_arm(v1::ARM_CANDIDATE);
    // The copy's answer is the candidate's own, as it came off the wire.
    v1::HttpMessage* resp = r.exchange.mutable_response();
    resp->Clear();
    resp->set_body(candidate_body);
    resp->set_complete(true);
    for (const auto& [k, v] : candidate_headers) {
      v1::Header* h = resp->add_headers();
      h->set_key(k);
      h->set_value(v);
    }
    done(r);
    if (noise) {
      MirrorResult n;
      n.kind = MirrorKind::kNoise;
      n.exchange = live;
      n.exchange.set_source(v1::SOURCE_NOISE);
      done(n);
    }
  }
  void RecordShadowCost(double cost) override { spent += cost; }
  std::string candidate_body;
  std::vector<std::pair<std::string, std::string>> candidate_headers;
  bool noise = false;
  double spent = 0;
};

class EngineTest : public ::testing::Test {
 protected:
  EngineTest()
      : store_(clock_),
        controller_(Config(), clock_, router_, log_) {}

  static rollout::RolloutConfig Config() {
    rollout::RolloutConfig c;
    c.stages = {{0, absl::Minutes(1), 10}, {10, absl::Minutes(1), 10}, {100}};
    return c;
  }

  std::unique_ptr<Engine> Make(ShadowPort* shadow = nullptr, int64_t feedback_per_minute = 60,
                               std::shared_ptr<const FeedbackSigner> signer = nullptr) {
    EngineOptions o;
    o.feedback_max_per_client_per_minute = feedback_per_minute;
    o.feedback_signer = std::move(signer);
    o.compare.prices["gpt-4o"] = {2.5, 10.0};
    o.compare.noise_min_samples = 1;
    EXPECT_OK(compare::CompileRefusalPatterns(&o.compare));
    return std::make_unique<Engine>(o, controller_, store_, clock_, shadow, nullptr);
  }

  ManualClock clock_;
  storage::FakeStore store_;
  rollout::Router router_;
  rollout::InMemoryTransitionLog log_;
  rollout::Controller controller_;
};

TEST_F(EngineTest, LiveOutcomesReachTheJudgeAndStorage) {
  auto engine = Make();
  ASSERT_TRUE(engine->Submit(Live("r1", v1::ARM_PRODUCTION, 200, OpenAiAnswer("Paris"))));
  ASSERT_TRUE(engine->Submit(Live("r2", v1::ARM_PRODUCTION, 503, "upstream overloaded")));
  ASSERT_TRUE(engine->Submit(Live("r3", v1::ARM_PRODUCTION, 200, "{not json")));
  engine->WaitIdle();
  const v1::HealthSnapshot h = controller_.Health();
  EXPECT_EQ(h.production().requests(), 3);
  EXPECT_EQ(h.production().errors_5xx(), 1);
  EXPECT_EQ(h.production().errors_invalid_body(), 1);
  // Cost from usage × price: 1000 × 2.5/1M + 500 × 10/1M.
  EXPECT_NEAR(h.production().cost_per_request(), 0.0075, 1e-9);
  auto stored = store_.GetExchanges("r1");
  ASSERT_OK(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].arm(), v1::ARM_PRODUCTION);
  EXPECT_EQ(engine->Stats().exchanges, 3);

  // No response at all: the client left; stored, but not held against the arm.
  v1::Exchange abandoned = Live("r4", v1::ARM_PRODUCTION, 0, "");
  abandoned.set_incomplete(true);
  ASSERT_TRUE(engine->Submit(std::move(abandoned)));
  engine->WaitIdle();
  EXPECT_EQ(controller_.Health().production().requests(), 3);
  EXPECT_EQ(engine->Stats().exchanges_abandoned, 1);
  EXPECT_EQ(store_.GetExchanges("r4")->size(), 1u);
}

TEST_F(EngineTest, ClassifiesBrokenStreamsAndMissingResponses) {
  compare::CompareOptions o;
  v1::Exchange e = Live("r", v1::ARM_CANDIDATE, 200,
                        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"m\","
                        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Par\"}}]}\n\n");
  EXPECT_EQ(ClassifyExchange(e, o, nullptr).outcome, rollout::OutcomeClass::kInvalidBody);
  e.set_status_code(0);
  EXPECT_EQ(ClassifyExchange(e, o, nullptr).outcome, rollout::OutcomeClass::kTransport);
  e.set_status_code(429);
  EXPECT_EQ(ClassifyExchange(e, o, nullptr).outcome, rollout::OutcomeClass::kThrottled);
  e = Live("r", v1::ARM_CANDIDATE, 200, OpenAiAnswer("ok", "gpt-5-mini"));
  ExchangeFacts f = ClassifyExchange(e, o, nullptr);
  EXPECT_EQ(f.outcome, rollout::OutcomeClass::kOk);
  EXPECT_EQ(f.request_model, "gpt-4o");
  EXPECT_EQ(f.response_model, "gpt-5-mini");
  EXPECT_EQ(f.usage.output_tokens, 500);
  EXPECT_EQ(*f.ttft, absl::Milliseconds(120));
  EXPECT_FALSE(f.cost.has_value());  // no prices configured
}

TEST_F(EngineTest, FeedbackJoinsWhicheverArrivesFirst) {
  auto engine = Make();
  // Feedback first: kept, stored unjoined, joined when the exchange lands.
  ASSERT_OK(engine->SubmitFeedbackJson(R"({"request_id":"early","score":"down"})",
                                       v1::FEEDBACK_SOURCE_ADMIN));
  EXPECT_EQ(controller_.Health().candidate().feedback_count(), 0);
  ASSERT_TRUE(engine->Submit(Live("early", v1::ARM_CANDIDATE, 200, OpenAiAnswer("x"))));
  engine->WaitIdle();
  EXPECT_EQ(controller_.Health().candidate().feedback_count(), 1);
  EXPECT_DOUBLE_EQ(controller_.Health().candidate().satisfaction_mean(), 0.0);
  auto fb = store_.FeedbackFor("early");
  ASSERT_OK(fb);
  ASSERT_FALSE(fb->empty());
  EXPECT_EQ(fb->back().arm(), v1::ARM_CANDIDATE);
  EXPECT_EQ(fb->back().source(), v1::FEEDBACK_SOURCE_ADMIN);

  // Exchange first: joined at once.
  ASSERT_TRUE(engine->Submit(Live("late", v1::ARM_PRODUCTION, 200, OpenAiAnswer("x"))));
  engine->WaitIdle();
  ASSERT_OK(engine->SubmitFeedbackJson(R"({"request_id":"late","score":0.75})",
                                       v1::FEEDBACK_SOURCE_ENVOY));
  EXPECT_EQ(controller_.Health().production().feedback_count(), 1);
  EXPECT_DOUBLE_EQ(controller_.Health().production().satisfaction_mean(), 0.75);
  EXPECT_EQ(engine->Stats().feedback_joined, 2);
}

TEST_F(EngineTest, BadFeedbackIsRejectedAndCounted) {
  auto engine = Make();
  EXPECT_THAT(engine->SubmitFeedbackJson("{", v1::FEEDBACK_SOURCE_ENVOY),
              StatusIs(absl::StatusCode::kInvalidArgument, ""));
  EXPECT_THAT(engine->SubmitFeedbackJson(R"({"request_id":"a","score":1.5})",
                                         v1::FEEDBACK_SOURCE_ENVOY),
              StatusIs(absl::StatusCode::kInvalidArgument, "score: must be in [0,1]"));
  EXPECT_EQ(engine->Stats().feedback_rejected, 2);
  EXPECT_EQ(store_.FeedbackFor("a")->size(), 0u);
}

// One score per request id, the first: a second one (another score, or
// the same again) is AlreadyExists, counted, and changes nothing — neither
// the judge's satisfaction nor the stored record.
TEST_F(EngineTest, FirstScoreWinsAndLaterOnesAreRefused) {
  auto engine = Make();
  ASSERT_TRUE(engine->Submit(Live("r1", v1::ARM_CANDIDATE, 200, OpenAiAnswer("x"))));
  engine->WaitIdle();
  ASSERT_OK(engine->SubmitFeedbackJson(R"({"request_id":"r1","score":"up"})",
                                       v1::FEEDBACK_SOURCE_ENVOY));
  for (const char* again : {R"({"request_id":"r1","score":"down"})",
                            R"({"request_id":"r1","score":"up"})"}) {
    EXPECT_THAT(engine->SubmitFeedbackJson(again, v1::FEEDBACK_SOURCE_ENVOY),
                StatusIs(absl::StatusCode::kAlreadyExists, "\"r1\" already has a score"));
  }
  v1::Feedback direct;
  direct.set_request_id("r1");
  direct.set_score(0);
  EXPECT_THAT(engine->SubmitFeedback(direct), StatusIs(absl::StatusCode::kAlreadyExists, ""));
  EXPECT_EQ(controller_.Health().candidate().feedback_count(), 1);
  EXPECT_DOUBLE_EQ(controller_.Health().candidate().satisfaction_mean(), 1.0);
  std::vector<v1::Feedback> stored = store_.FeedbackFor("r1").value();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_DOUBLE_EQ(stored[0].score(), 1.0);
  EXPECT_EQ(engine->Stats().feedback_duplicates, 3);
  EXPECT_EQ(engine->Stats().feedback_joined, 1);
  // Another request is scored as usual.
  EXPECT_OK(engine->SubmitFeedbackJson(R"({"request_id":"r2","score":0})",
                                       v1::FEEDBACK_SOURCE_ADMIN));
}

// The first score is remembered across a restart: a new engine on the same
// store finds it there.
TEST_F(EngineTest, FirstScoreWinsAcrossARestart) {
  {
    auto engine = Make();
    ASSERT_OK(engine->SubmitFeedbackJson(R"({"request_id":"r1","score":1})",
                                         v1::FEEDBACK_SOURCE_ADMIN));
  }
  auto restarted = Make();
  EXPECT_THAT(restarted->SubmitFeedbackJson(R"({"request_id":"r1","score":0})",
                                            v1::FEEDBACK_SOURCE_ENVOY),
              StatusIs(absl::StatusCode::kAlreadyExists, ""));
  EXPECT_EQ(restarted->Stats().feedback_duplicates, 1);
  ASSERT_EQ(store_.FeedbackFor("r1")->size(), 1u);
  EXPECT_DOUBLE_EQ(store_.FeedbackFor("r1")->at(0).score(), 1.0);
}

// Many clients racing to score one request: exactly one wins.
TEST_F(EngineTest, ConcurrentScoresForOneRequestStoreExactlyOne) {
  auto engine = Make();
  ASSERT_TRUE(engine->Submit(Live("race", v1::ARM_PRODUCTION, 200, OpenAiAnswer("x"))));
  engine->WaitIdle();
  constexpr int kThreads = 16;
  std::atomic<int> accepted{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      absl::Status s = engine->SubmitFeedbackJson(
          absl::StrCat(R"({"request_id":"race","score":)", i % 2, "}"), v1::FEEDBACK_SOURCE_ENVOY);
      if (s.ok()) {
        ++accepted;
      } else if (s.code() == absl::StatusCode::kAlreadyExists) {
        ++refused;
      } else {
        ++other;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(controller_.Health().production().feedback_count(), 1);
  EXPECT_EQ(store_.FeedbackFor("race")->size(), 1u);
  EXPECT_EQ(engine->Stats().feedback_duplicates, kThreads - 1);
}

// A score that arrives before its exchange is stored at once and joined
// later: the join rewrites that record, so the request has one feedback
// record, with its arm (it used to get a second one).
TEST_F(EngineTest, FeedbackJoinedLaterIsStoredOnce) {
  auto engine = Make();
  ASSERT_OK(engine->SubmitFeedbackJson(R"({"request_id":"early","score":0.25,"comment":"meh"})",
                                       v1::FEEDBACK_SOURCE_ENVOY));
  ASSERT_EQ(store_.FeedbackFor("early")->size(), 1u);
  EXPECT_EQ(store_.FeedbackFor("early")->at(0).arm(), v1::ARM_UNSPECIFIED);
  clock_.Advance(absl::Seconds(3));  // the exchange lands later
  ASSERT_TRUE(engine->Submit(Live("early", v1::ARM_CANDIDATE, 200, OpenAiAnswer("x"))));
  engine->WaitIdle();
  std::vector<v1::Feedback> stored = store_.FeedbackFor("early").value();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].arm(), v1::ARM_CANDIDATE);
  EXPECT_DOUBLE_EQ(stored[0].score(), 0.25);
  EXPECT_EQ(stored[0].comment(), "meh");
  EXPECT_EQ(stored[0].source(), v1::FEEDBACK_SOURCE_ENVOY);
  EXPECT_EQ(controller_.Health().candidate().feedback_count(), 1);
}

// A score the store could not take is not counted and may be sent again.
TEST_F(EngineTest, ScoreTheStoreRefusedCanBeSentAgain) {
  auto engine = Make();
  ASSERT_TRUE(engine->Submit(Live("r1", v1::ARM_CANDIDATE, 200, OpenAiAnswer("x"))));
  engine->WaitIdle();
  store_.FailNextWrite(absl::UnavailableError("disk full"));
  EXPECT_THAT(engine->SubmitFeedbackJson(R"({"request_id":"r1","score":1})",
                                         v1::FEEDBACK_SOURCE_ADMIN),
              StatusIs(absl::StatusCode::kUnavailable, "disk full"));
  EXPECT_EQ(controller_.Health().candidate().feedback_count(), 0);
  EXPECT_OK(engine->SubmitFeedbackJson(R"({"request_id":"r1","score":1})",
                                       v1::FEEDBACK_SOURCE_ADMIN));
  EXPECT_EQ(controller_.Health().candidate().feedback_count(), 1);
  EXPECT_EQ(engine->Stats().feedback_duplicates, 0);
}

// Through Envoy, each client (the sticky header's value) may send at most
// feedback.max_per_client_per_minute scores a minute; more are
// ResourceExhausted before anything is parsed or stored. Others are not
// affected, and the budget refills with time.
TEST_F(EngineTest, FeedbackIsBoundedPerClient) {
  auto engine = Make(nullptr, /*feedback_per_minute=*/3);
  auto score = [&](const std::string& client, int i) {
    return engine->SubmitFeedbackJson(
        absl::StrCat(R"({"request_id":")", client, "-", i, R"(","score":1})"),
        v1::FEEDBACK_SOURCE_ENVOY, client, /*token=*/"");
  };
  for (int i = 0; i < 3; ++i) EXPECT_OK(score("alice", i));
  EXPECT_THAT(score("alice", 3), StatusIs(absl::StatusCode::kResourceExhausted,
                                          "feedback.max_per_client_per_minute"));
  EXPECT_THAT(engine->SubmitFeedbackJson("not json", v1::FEEDBACK_SOURCE_ENVOY, "alice", ""),
              StatusIs(absl::StatusCode::kResourceExhausted, ""));
  EXPECT_OK(score("bob", 0));
  EXPECT_EQ(store_.FeedbackFor("alice-3")->size(), 0u);
  EXPECT_EQ(engine->Stats().feedback_rate_limited, 2);
  EXPECT_EQ(engine->Stats().feedback_rejected, 0);  // refused before parsing
  clock_.Advance(absl::Seconds(21));                // one token back at 3 a minute
  EXPECT_OK(score("alice", 4));
  EXPECT_THAT(score("alice", 5), StatusIs(absl::StatusCode::kResourceExhausted, ""));
  // The admin API's door has no per-client limit (it needs the admin token).
  for (int i = 0; i < 5; ++i) {
    EXPECT_OK(engine->SubmitFeedbackJson(absl::StrCat(R"({"request_id":"admin-)", i,
                                                      R"(","score":1})"),
                                         v1::FEEDBACK_SOURCE_ADMIN));
  }
}

// With signed tokens, feedback through Envoy must bring the token issued for
// its request id; anything else is PermissionDenied, counted, and stores
// nothing. The admin API's door (behind the admin token) needs none.
TEST_F(EngineTest, SignedFeedbackNeedsTheTokenOfItsRequest) {
  auto signer = std::make_shared<const FeedbackSigner>(std::string(32, 's'), absl::Hours(24),
                                                       clock_);
  auto engine = Make(nullptr, 60, signer);
  const std::string body = R"({"request_id":"r1","score":1})";
  EXPECT_THAT(engine->SubmitFeedbackJson(body, v1::FEEDBACK_SOURCE_ENVOY, "alice", ""),
              StatusIs(absl::StatusCode::kPermissionDenied, "x-understudy-feedback-token"));
  EXPECT_THAT(engine->SubmitFeedbackJson(body, v1::FEEDBACK_SOURCE_ENVOY, "alice",
                                         signer->Sign("r2")),
              StatusIs(absl::StatusCode::kPermissionDenied, "not issued for this request id"));
  EXPECT_EQ(store_.FeedbackFor("r1")->size(), 0u);
  EXPECT_EQ(engine->Stats().feedback_bad_token, 2);
  EXPECT_OK(engine->SubmitFeedbackJson(body, v1::FEEDBACK_SOURCE_ENVOY, "alice",
                                       signer->Sign("r1")));
  EXPECT_EQ(store_.FeedbackFor("r1")->size(), 1u);
  EXPECT_OK(engine->SubmitFeedbackJson(R"({"request_id":"r9","score":0})",
                                       v1::FEEDBACK_SOURCE_ADMIN));
  EXPECT_EQ(engine->Stats().feedback_bad_token, 2);
}

// FeedbackLimiter: a token bucket per client that refills continuously,
// forgets the oldest clients past its cap, and allows all at 0.
TEST_F(EngineTest, FeedbackLimiterRefillsAndForgets) {
  FeedbackLimiter limiter(/*per_minute=*/2, clock_, /*max_clients=*/2);
  EXPECT_TRUE(limiter.Allow("a"));
  EXPECT_TRUE(limiter.Allow("a"));
  EXPECT_FALSE(limiter.Allow("a"));
  clock_.Advance(absl::Seconds(29));
  EXPECT_FALSE(limiter.Allow("a"));  // 0.97 of a token
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(limiter.Allow("a"));
  clock_.Advance(absl::Hours(1));  // full again, never more than per_minute
  EXPECT_TRUE(limiter.Allow("a"));
  EXPECT_TRUE(limiter.Allow("a"));
  EXPECT_FALSE(limiter.Allow("a"));
  EXPECT_TRUE(limiter.Allow("b"));
  EXPECT_TRUE(limiter.Allow("c"));  // past the cap: "a", the oldest, is forgotten
  EXPECT_TRUE(limiter.Allow("a"));  // and starts full
  FeedbackLimiter unlimited(0, clock_);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(unlimited.Allow("x"));
}

TEST_F(EngineTest, MirroredAnswersAreComparedJudgedAndStored) {
  FakeShadow shadow;
  shadow.candidate_body = OpenAiAnswer("Lyon is the capital of France.", "gpt-4o");
  auto engine = Make(&shadow);
  ASSERT_TRUE(engine->Submit(
      Live("m1", v1::ARM_PRODUCTION, 200, OpenAiAnswer("Paris is the capital of France."))));
  engine->WaitIdle();
  auto c = store_.GetComparison("m1");
  ASSERT_OK(c);
  EXPECT_EQ(c->verdict(), v1::VERDICT_MAJOR_DIFF) << c->DebugString();
  EXPECT_EQ(controller_.Health().shadow().comparisons(), 1);
  EXPECT_GT(shadow.spent, 0.0);
  auto stored = store_.GetExchanges("m1");
  ASSERT_OK(stored);
  ASSERT_EQ(stored->size(), 2u);  // live + shadow copy
  EXPECT_EQ(engine->Stats().comparisons, 1);
}

std::string Gzip(std::string_view in) { return testing::Deflate(in); }

// A gzip'd live answer and a gzip'd candidate answer are decoded and
// compared like plain ones: identical answers are equivalent, not errors.
TEST_F(EngineTest, CompressedAnswersOnBothArmsAreDecodedAndCompared) {
  FakeShadow shadow;
  const std::string answer = OpenAiAnswer("Paris is the capital of France.");
  shadow.candidate_body = Gzip(answer);
  shadow.candidate_headers = {{"content-type", "application/json"}, {"content-encoding", "gzip"}};
  auto engine = Make(&shadow);
  v1::Exchange live = Live("z1", v1::ARM_PRODUCTION, 200, Gzip(answer));
  live.set_api("openai_chat");
  v1::Header* h = live.mutable_response()->add_headers();
  h->set_key("content-encoding");
  h->set_value("gzip");
  ASSERT_TRUE(engine->Submit(std::move(live)));
  engine->WaitIdle();
  absl::StatusOr<v1::Comparison> c = store_.GetComparison("z1");
  ASSERT_OK(c);
  EXPECT_EQ(c->verdict(), v1::VERDICT_EQUIVALENT) << c->DebugString();
  EXPECT_EQ(controller_.Health().production().errors(), 0);
  absl::StatusOr<std::vector<v1::Exchange>> stored = store_.GetExchanges("z1");
  ASSERT_OK(stored);
  for (const v1::Exchange& e : *stored) {
    EXPECT_EQ(e.response().body(), answer);  // stored decoded
    EXPECT_EQ(e.response().content_encoding(), "gzip");
  }
}

// Embeddings are compared as vectors (dimension, cosine), not as chat.
TEST_F(EngineTest, EmbeddingsAreComparedAsVectors) {
  FakeShadow shadow;
  const std::string prod =
      R"({"object":"list","model":"e","data":[{"index":0,"embedding":[0.6,0.8]}],"usage":{"prompt_tokens":2,"total_tokens":2}})";
  shadow.candidate_body =
      R"({"object":"list","model":"e","data":[{"index":0,"embedding":[0.6,0.8,0.0]}],"usage":{"prompt_tokens":2,"total_tokens":2}})";
  auto engine = Make(&shadow);
  v1::Exchange live = Live("v1", v1::ARM_PRODUCTION, 200, prod);
  live.set_api("openai_embeddings");
  live.set_path("/v1/embeddings");
  live.mutable_request()->set_body(R"({"model":"e","input":"hi"})");
  ASSERT_TRUE(engine->Submit(std::move(live)));
  engine->WaitIdle();
  absl::StatusOr<v1::Comparison> c = store_.GetComparison("v1");
  ASSERT_OK(c);
  EXPECT_EQ(c->verdict(), v1::VERDICT_MAJOR_DIFF) << c->DebugString();  // 2 vs 3 dimensions
  EXPECT_EQ(c->request_kind(), "embedding");
  EXPECT_EQ(controller_.Health().production().errors(), 0);
}

TEST_F(EngineTest, NoiseCopiesFeedTheNoiseModelNotTheJudge) {
  FakeShadow shadow;
  shadow.candidate_body = OpenAiAnswer("Paris.");
  shadow.noise = true;
  auto engine = Make(&shadow);
  ASSERT_TRUE(engine->Submit(Live("n1", v1::ARM_PRODUCTION, 200, OpenAiAnswer("Paris."))));
  engine->WaitIdle();
  EXPECT_EQ(engine->Stats().noise_comparisons, 1);
  EXPECT_GT(engine->noise().Samples("lcs_f1") + engine->noise().Samples("chrf") +
                engine->noise().Samples("exact"),
            0);
  EXPECT_EQ(controller_.Health().shadow().comparisons(), 1);  // the shadow copy only
}

TEST_F(EngineTest, TickStoresHealthSnapshots) {
  auto engine = Make();
  ASSERT_OK(engine->Tick());
  auto series = store_.HealthSeries(absl::InfinitePast(), storage::kNoLimit);
  ASSERT_OK(series);
  EXPECT_EQ(series->size(), 1u);
  ASSERT_OK(engine->Tick());  // not due yet
  EXPECT_EQ(store_.HealthSeries(absl::InfinitePast(), storage::kNoLimit)->size(), 1u);
  clock_.Advance(absl::Seconds(11));
  ASSERT_OK(engine->Tick());
  EXPECT_EQ(store_.HealthSeries(absl::InfinitePast(), storage::kNoLimit)->size(), 2u);
}

}  // namespace
}  // namespace understudy::sidecar
