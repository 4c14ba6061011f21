// The Store contract (storage/store.h), run against every implementation: the
// RocksDB store in a fresh temporary directory and FakeStore. A behaviour
// asserted here is one other modules may rely on whichever store they get.
// Implementation-specific behaviour (durability across reopen, retention
// deletes, the size cap, privacy, I/O faults, FailNextWrite) is tested in
// rocksdb_store_test.cc and fake_store_test.cc.
//
// All record times are whole milliseconds: the RocksDB store keys records by
// millisecond, so the order of two records within one millisecond and a
// `since` inside a millisecond are not part of the contract.
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "storage/store.h"
#include "tests/common/test_util.h"
#include "tests/storage/fake_store.h"
#include "tests/storage/store_test_util.h"

namespace understudy::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;
using ::understudy::testing::StatusIs;

// ------------------------------------------------------------ factories --

// OpenedStore is a store under test and what must outlive it.
struct OpenedStore {
  std::unique_ptr<TempDir> dir;  // the RocksDB directory; null for the fake
  std::unique_ptr<Store> store;  // declared last: closed before dir is removed
};

struct StoreFactory {
  std::string name;
  std::function<absl::StatusOr<OpenedStore>(Clock& clock)> open;
};

void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

absl::StatusOr<OpenedStore> OpenRocks(Clock& clock) {
  OpenedStore opened;
  opened.dir = std::make_unique<TempDir>();
  StorageConfig config;
  config.path = opened.dir->Sub("db");
  config.retention_interval = absl::ZeroDuration();  // no background thread
  // FakeStore does not scrub (fake_store.h): bodies are stored as given here.
  config.privacy.body_mode = BodyMode::kFull;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(config, clock);
  if (!store.ok()) return store.status();
  opened.store = *std::move(store);
  return opened;
}

absl::StatusOr<OpenedStore> OpenFake(Clock& clock) {
  OpenedStore opened;
  opened.store = std::make_unique<FakeStore>(clock);
  return opened;
}

// -------------------------------------------------------------- helpers --

MATCHER_P(EqualsProto, expected, "") {
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  if (differencer.Compare(expected, arg)) return true;
  *result_listener << diff;
  return false;
}

// ValueOf returns the value of `s`, or records a failure and returns T{}.
template <typename T>
T ValueOf(absl::StatusOr<T> s) {
  if (!s.ok()) {
    ADD_FAILURE() << "unexpected error: " << s.status();
    return T{};
  }
  return *std::move(s);
}

template <typename M>
std::vector<std::string> Ids(const std::vector<M>& records) {
  std::vector<std::string> out;
  for (const M& r : records) out.push_back(r.request_id());
  return out;
}

std::vector<std::string> Reasons(const std::vector<v1::Decision>& decisions) {
  std::vector<std::string> out;
  for (const v1::Decision& d : decisions) out.push_back(d.reason());
  return out;
}

std::vector<int64_t> CandidateRequests(const std::vector<v1::HealthSnapshot>& series) {
  std::vector<int64_t> out;
  for (const v1::HealthSnapshot& h : series) out.push_back(h.candidate().requests());
  return out;
}

std::vector<double> Scores(const std::vector<v1::Feedback>& feedback) {
  std::vector<double> out;
  for (const v1::Feedback& f : feedback) out.push_back(f.score());
  return out;
}

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

v1::Feedback MakeFeedback(const std::string& id, absl::Time t, double score) {
  v1::Feedback f;
  f.set_request_id(id);
  f.set_time_unix_micros(Micros(t));
  f.set_score(score);
  f.set_comment("from a test");
  return f;
}

v1::HealthSnapshot MakeHealth(absl::Time t, int64_t candidate_requests) {
  v1::HealthSnapshot h;
  h.set_time_unix_micros(Micros(t));
  h.mutable_candidate()->set_requests(candidate_requests);
  return h;
}

v1::RolloutState MakeState(v1::RolloutPhase phase, int32_t weight, int64_t version) {
  v1::RolloutState s;
  s.set_phase(phase);
  s.set_weight_basis_points(weight);
  s.set_version(version);
  return s;
}

// ------------------------------------------------------------- fixture --

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    absl::StatusOr<OpenedStore> opened = GetParam().open(clock_);
    ASSERT_OK(opened);
    opened_ = *std::move(opened);
  }

  Store& store() { return *opened_.store; }
  absl::Time t0() const { return start_; }

  ManualClock clock_;  // starts on a whole second
  const absl::Time start_ = clock_.Now();
  OpenedStore opened_;  // declared last: destroyed before the clock
};

// --------------------------------------------------------------- writes --

// One Write stores an exchange, a comparison, feedback and a health snapshot.
TEST_P(StoreContractTest, WriteStoresEveryKindOfRecordOfABatch) {
  RecordBatch batch;
  batch.Add(MakeExchange("r", t0()));
  batch.Add(MakeComparison("r", t0(), v1::VERDICT_MINOR_DIFF, v1::ARM_PRODUCTION));
  batch.Add(MakeFeedback("r", t0(), 0.5));
  batch.Add(MakeHealth(t0(), 3));
  ASSERT_OK(store().Write(std::move(batch)));

  EXPECT_THAT(ValueOf(store().GetExchanges("r")), ElementsAre(EqualsProto(MakeExchange("r", t0()))));
  EXPECT_THAT(ValueOf(store().GetComparison("r")),
              EqualsProto(MakeComparison("r", t0(), v1::VERDICT_MINOR_DIFF, v1::ARM_PRODUCTION)));
  EXPECT_THAT(ValueOf(store().FeedbackFor("r")), ElementsAre(EqualsProto(MakeFeedback("r", t0(), 0.5))));
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfinitePast())),
              ElementsAre(EqualsProto(MakeHealth(t0(), 3))));
}

// An empty batch is a successful no-op.
TEST_P(StoreContractTest, WriteOfAnEmptyBatchSucceedsAndStoresNothing) {
  // batches_written is not asserted: the fake counts an empty call as a batch.
  ASSERT_OK(store().Write(RecordBatch()));
  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit)), IsEmpty());
  EXPECT_THAT(ValueOf(store().ListComparisons(ComparisonQuery())), IsEmpty());
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfinitePast())), IsEmpty());
  EXPECT_EQ(store().Stats().records_written, 0);
}

// Each single-record and vector convenience stores exactly what it is given.
TEST_P(StoreContractTest, PutConveniencesStoreEachRecordAsGiven) {
  v1::Exchange exchange = MakeExchange("one", t0());
  exchange.set_method("POST");
  exchange.set_path("/v1/chat/completions");
  exchange.set_authority("api.example.com");
  exchange.set_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  v1::Header* header = exchange.mutable_request()->add_headers();
  header->set_key("content-type");
  header->set_value("application/json");
  exchange.mutable_response()->set_body(std::string("\x00\x01\xff binary", 10));
  exchange.mutable_response()->set_body_truncated(true);
  exchange.mutable_response()->set_body_bytes_seen(1 << 20);
  v1::Header* trailer = exchange.mutable_response()->add_trailers();
  trailer->set_key("grpc-status");
  trailer->set_value("0");
  exchange.set_response_headers_offset_micros(1500);
  exchange.set_first_body_byte_offset_micros(-1);
  exchange.set_incomplete(true);
  exchange.set_error("stream reset");
  v1::Comparison comparison = MakeComparison("one", t0(), v1::VERDICT_MAJOR_DIFF, v1::ARM_CANDIDATE);
  v1::ComparatorScore* score = comparison.add_scores();
  score->set_name("lcs_f1");
  score->set_score(0.25);
  score->set_applicable(true);
  comparison.add_findings()->set_kind("refusal");
  comparison.set_candidate_cost(0.0042);
  const v1::Feedback feedback = MakeFeedback("one", t0(), 1.0);
  v1::HealthSnapshot health = MakeHealth(t0(), 9);
  *health.mutable_state() = MakeState(v1::PHASE_CANARY, 500, 4);

  ASSERT_OK(store().PutExchange(exchange));
  ASSERT_OK(store().PutComparison(comparison));
  ASSERT_OK(store().PutFeedback(feedback));
  ASSERT_OK(store().PutHealth(health));
  const absl::Time t1 = t0() + absl::Seconds(1);
  ASSERT_OK(store().PutExchanges({MakeExchange("two", t1), MakeExchange("three", t1 + absl::Seconds(1))}));
  ASSERT_OK(store().PutComparisons(
      {MakeComparison("two", t1, v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION),
       MakeComparison("three", t1 + absl::Seconds(1), v1::VERDICT_BOTH_ERROR, v1::ARM_PRODUCTION)}));

  EXPECT_THAT(ValueOf(store().GetExchanges("one")), ElementsAre(EqualsProto(exchange)));
  EXPECT_THAT(ValueOf(store().GetComparison("one")), EqualsProto(comparison));
  EXPECT_THAT(ValueOf(store().FeedbackFor("one")), ElementsAre(EqualsProto(feedback)));
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfinitePast())), ElementsAre(EqualsProto(health)));
  EXPECT_THAT(ValueOf(store().GetExchanges("three")),
              ElementsAre(EqualsProto(MakeExchange("three", t1 + absl::Seconds(1)))));
  EXPECT_THAT(Ids(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit))),
              ElementsAre("one", "two", "three"));
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(ComparisonQuery()))), ElementsAre("one", "two", "three"));
  EXPECT_EQ(store().Stats().records_written, 8);
}

// Records whose time is 0 get the clock's time, and then list by it.
TEST_P(StoreContractTest, RecordsWithoutATimeGetTheClocksTime) {
  v1::Comparison early;
  early.set_request_id("early");
  early.set_verdict(v1::VERDICT_MAJOR_DIFF);
  v1::Exchange exchange = MakeExchange("early", absl::UnixEpoch());
  exchange.clear_start_unix_micros();
  v1::Feedback feedback = MakeFeedback("early", absl::UnixEpoch(), 1);
  feedback.clear_time_unix_micros();
  v1::Decision decision = MakeDecision("early", absl::UnixEpoch(), 1);
  decision.clear_time_unix_micros();
  RecordBatch batch;
  batch.Add(exchange);
  batch.Add(early);
  batch.Add(feedback);
  batch.Add(v1::HealthSnapshot());
  ASSERT_OK(store().Write(std::move(batch)));
  ASSERT_OK(store().AppendDecision(decision));
  clock_.Advance(absl::Seconds(1));
  v1::Comparison late;
  late.set_request_id("late");
  late.set_verdict(v1::VERDICT_MINOR_DIFF);
  ASSERT_OK(store().PutComparison(late));
  decision.set_reason("late");
  ASSERT_OK(store().CommitTransition(MakeState(v1::PHASE_CANARY, 100, 2), decision));

  const int64_t first = Micros(t0());
  const int64_t second = Micros(t0() + absl::Seconds(1));
  EXPECT_EQ(ValueOf(store().GetExchanges("early")).at(0).start_unix_micros(), first);
  EXPECT_EQ(ValueOf(store().GetComparison("early")).time_unix_micros(), first);
  EXPECT_EQ(ValueOf(store().GetComparison("late")).time_unix_micros(), second);
  EXPECT_EQ(ValueOf(store().FeedbackFor("early")).at(0).time_unix_micros(), first);
  EXPECT_EQ(ValueOf(store().HealthSeries(absl::InfinitePast())).at(0).time_unix_micros(), first);
  std::vector<v1::Decision> decisions = ValueOf(store().ListDecisions(absl::InfinitePast(), kNoLimit));
  ASSERT_THAT(decisions, SizeIs(2));
  EXPECT_EQ(decisions[0].time_unix_micros(), first);
  EXPECT_EQ(decisions[1].time_unix_micros(), second);
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(ComparisonQuery()))), ElementsAre("early", "late"));
  ComparisonQuery major;
  major.verdicts = {v1::VERDICT_MAJOR_DIFF};
  std::vector<v1::Comparison> found = ValueOf(store().ListComparisons(major));
  ASSERT_THAT(found, SizeIs(1));
  EXPECT_EQ(found[0].request_id(), "early");
  EXPECT_EQ(found[0].time_unix_micros(), 1700000000LL * 1000000);
}

// A time before the epoch is not 0: it is kept as given, not stamped.
TEST_P(StoreContractTest, PreEpochTimeIsKeptNotStamped) {
  const absl::Time before_epoch = absl::UnixEpoch() - absl::Seconds(5);
  ASSERT_OK(store().PutExchange(MakeExchange("old", before_epoch)));
  ASSERT_OK(store().PutExchange(MakeExchange("now", t0())));
  std::vector<v1::Exchange> all = ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit));
  ASSERT_THAT(Ids(all), ElementsAre("old", "now"));
  EXPECT_EQ(all[0].start_unix_micros(), Micros(before_epoch));
}

// A NUL byte in any record's request id fails the whole batch.
TEST_P(StoreContractTest, RequestIdWithNulIsInvalidArgumentAndStoresNothingOfTheBatch) {
  const std::string nul_id("a\0b", 3);
  EXPECT_THAT(store().PutExchange(MakeExchange(nul_id, t0())),
              StatusIs(absl::StatusCode::kInvalidArgument, "NUL"));
  EXPECT_THAT(store().PutComparison(MakeComparison(nul_id, t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)),
              StatusIs(absl::StatusCode::kInvalidArgument, "NUL"));
  EXPECT_THAT(store().PutFeedback(MakeFeedback(nul_id, t0(), 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, "NUL"));
  RecordBatch batch;
  batch.Add(MakeExchange("fine", t0()));
  batch.Add(MakeHealth(t0(), 1));
  batch.Add(MakeComparison(nul_id, t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
  EXPECT_THAT(store().Write(std::move(batch)), StatusIs(absl::StatusCode::kInvalidArgument, "NUL"));

  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit)), IsEmpty());
  EXPECT_THAT(ValueOf(store().ListComparisons(ComparisonQuery())), IsEmpty());
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfinitePast())), IsEmpty());
  EXPECT_THAT(ValueOf(store().GetExchanges("fine")), IsEmpty());
  EXPECT_EQ(store().Stats().records_written, 0);
}

// Looking up a request id with a NUL byte is bad input, not "none found".
TEST_P(StoreContractTest, LookupByARequestIdWithNulIsInvalidArgument) {
  const std::string nul_id("a\0b", 3);
  EXPECT_THAT(store().GetExchanges(nul_id), StatusIs(absl::StatusCode::kInvalidArgument, "NUL"));
  EXPECT_THAT(store().GetComparison(nul_id), StatusIs(absl::StatusCode::kInvalidArgument, "NUL"));
  EXPECT_THAT(store().FeedbackFor(nul_id), StatusIs(absl::StatusCode::kInvalidArgument, "NUL"));
}

// -------------------------------------------------------------- lookups --

// Every exchange of a request (live, shadow, noise) comes back oldest first.
TEST_P(StoreContractTest, GetExchangesReturnsEveryExchangeOfARequestOldestFirst) {
  v1::Exchange live = MakeExchange("req-1", t0() + absl::Milliseconds(2));
  v1::Exchange shadow = MakeExchange("req-1", t0() + absl::Milliseconds(1));
  shadow.set_arm(v1::ARM_CANDIDATE);
  shadow.set_source(v1::SOURCE_SHADOW);
  v1::Exchange noise = MakeExchange("req-1", t0() + absl::Milliseconds(3));
  noise.set_source(v1::SOURCE_NOISE);
  ASSERT_OK(store().PutExchanges({live, MakeExchange("req-2", t0()), noise}));
  ASSERT_OK(store().PutExchange(shadow));

  EXPECT_THAT(ValueOf(store().GetExchanges("req-1")),
              ElementsAre(EqualsProto(shadow), EqualsProto(live), EqualsProto(noise)));
  EXPECT_THAT(Ids(ValueOf(store().GetExchanges("req-2"))), ElementsAre("req-2"));
}

// Live and shadow exchanges of one request at the same time are both kept.
TEST_P(StoreContractTest, ExchangesOfOneRequestAtTheSameTimeAreKeptPerSourceAndArm) {
  v1::Exchange live = MakeExchange("req-1", t0());
  v1::Exchange shadow = MakeExchange("req-1", t0());
  shadow.set_arm(v1::ARM_CANDIDATE);
  shadow.set_source(v1::SOURCE_SHADOW);
  v1::Exchange candidate_live = MakeExchange("req-1", t0());
  candidate_live.set_arm(v1::ARM_CANDIDATE);
  ASSERT_OK(store().PutExchanges({live, shadow, candidate_live, MakeExchange("req-2", t0())}));

  // Their order within one millisecond is not part of the contract.
  EXPECT_THAT(ValueOf(store().GetExchanges("req-1")),
              UnorderedElementsAre(EqualsProto(live), EqualsProto(shadow), EqualsProto(candidate_live)));
  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfinitePast(), 10)), SizeIs(4));
  EXPECT_EQ(store().Stats().records_written, 4);
}

// An exchange rewritten under its key (ms, id, source, arm) replaces the first.
TEST_P(StoreContractTest, ExchangeWrittenTwiceUnderTheSameKeyIsStoredOnce) {
  v1::Exchange first = MakeExchange("r", t0());
  v1::Exchange again = MakeExchange("r", t0());
  again.set_status_code(503);
  ASSERT_OK(store().PutExchange(first));
  ASSERT_OK(store().PutExchange(again));
  EXPECT_THAT(ValueOf(store().GetExchanges("r")), ElementsAre(EqualsProto(again)));
  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit)), SizeIs(1));
}

// A request nothing was stored for has no exchanges and no feedback: not an error.
TEST_P(StoreContractTest, LookupsOfAnUnknownRequestAreEmpty) {
  ASSERT_OK(store().PutExchange(MakeExchange("known", t0())));
  ASSERT_OK(store().PutFeedback(MakeFeedback("known", t0(), 1)));
  EXPECT_THAT(ValueOf(store().GetExchanges("nope")), IsEmpty());
  EXPECT_THAT(ValueOf(store().FeedbackFor("nope")), IsEmpty());
}

// The latest comparison of a request by time wins, whatever the write order.
TEST_P(StoreContractTest, GetComparisonReturnsTheLatestComparisonOfARequest) {
  ASSERT_OK(store().PutComparison(
      MakeComparison("r", t0() + absl::Seconds(2), v1::VERDICT_MAJOR_DIFF, v1::ARM_CANDIDATE)));
  ASSERT_OK(store().PutComparison(MakeComparison("r", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)));
  ASSERT_OK(store().PutComparison(
      MakeComparison("other", t0() + absl::Seconds(3), v1::VERDICT_MINOR_DIFF, v1::ARM_PRODUCTION)));
  v1::Comparison c = ValueOf(store().GetComparison("r"));
  EXPECT_EQ(c.verdict(), v1::VERDICT_MAJOR_DIFF);
  EXPECT_EQ(c.live_arm(), v1::ARM_CANDIDATE);
  EXPECT_EQ(c.time_unix_micros(), Micros(t0() + absl::Seconds(2)));
}

// A request without a comparison is NotFound, and the message names it.
TEST_P(StoreContractTest, GetComparisonOfAnUnknownRequestIsNotFound) {
  EXPECT_THAT(store().GetComparison("zz"), StatusIs(absl::StatusCode::kNotFound, "zz"));
  ASSERT_OK(store().PutComparison(MakeComparison("a", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)));
  EXPECT_THAT(store().GetComparison("zz"), StatusIs(absl::StatusCode::kNotFound, "zz"));
}

// A comparison rewritten under its key (ms, request id) replaces the first.
TEST_P(StoreContractTest, ComparisonWrittenTwiceUnderTheSameKeyReplacesTheFirst) {
  ASSERT_OK(store().PutComparison(MakeComparison("r", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)));
  ASSERT_OK(store().PutComparison(MakeComparison("r", t0(), v1::VERDICT_MAJOR_DIFF, v1::ARM_PRODUCTION)));
  EXPECT_EQ(ValueOf(store().GetComparison("r")).verdict(), v1::VERDICT_MAJOR_DIFF);
  std::vector<v1::Comparison> all = ValueOf(store().ListComparisons(ComparisonQuery()));
  ASSERT_THAT(all, SizeIs(1));
  EXPECT_EQ(all[0].verdict(), v1::VERDICT_MAJOR_DIFF);
}

// Lookups by request id match the whole id, never a prefix or extension of it.
TEST_P(StoreContractTest, LookupsMatchWholeRequestIdsNotPrefixes) {
  for (const char* id : {"req", "req-1", "re"}) {
    ASSERT_OK(store().PutExchange(MakeExchange(id, t0())));
    ASSERT_OK(store().PutComparison(MakeComparison(id, t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)));
    ASSERT_OK(store().PutFeedback(MakeFeedback(id, t0(), 1)));
  }
  EXPECT_THAT(Ids(ValueOf(store().GetExchanges("req"))), ElementsAre("req"));
  EXPECT_EQ(ValueOf(store().GetComparison("req")).request_id(), "req");
  EXPECT_THAT(Ids(ValueOf(store().FeedbackFor("req"))), ElementsAre("req"));
  EXPECT_THAT(store().GetComparison("req-"), StatusIs(absl::StatusCode::kNotFound, ""));
  EXPECT_THAT(ValueOf(store().GetExchanges("r")), IsEmpty());
}

// Every rating of a request comes back, oldest first, whatever the write order.
TEST_P(StoreContractTest, FeedbackForReturnsEveryRatingOfARequestOldestFirst) {
  ASSERT_OK(store().PutFeedback(MakeFeedback("r", t0() + absl::Seconds(2), 0.25)));
  ASSERT_OK(store().PutFeedback(MakeFeedback("other", t0() + absl::Seconds(1), 0.5)));
  ASSERT_OK(store().PutFeedback(MakeFeedback("r", t0() + absl::Seconds(1), 0.75)));
  ASSERT_OK(store().PutFeedback(MakeFeedback("r", t0() + absl::Seconds(3), 1.0)));
  EXPECT_THAT(Scores(ValueOf(store().FeedbackFor("r"))), ElementsAre(0.75, 0.25, 1.0));
}

// Two ratings of one request in the same millisecond are both kept, in write order.
TEST_P(StoreContractTest, FeedbackForKeepsRatingsOfTheSameMillisecondInWriteOrder) {
  v1::Feedback up = MakeFeedback("r", absl::UnixEpoch(), 1);
  up.clear_time_unix_micros();
  v1::Feedback down = up;
  down.set_score(0);
  down.set_comment("second");
  ASSERT_OK(store().PutFeedback(up));
  ASSERT_OK(store().PutFeedback(down));
  std::vector<v1::Feedback> fb = ValueOf(store().FeedbackFor("r"));
  ASSERT_THAT(fb, SizeIs(2));
  EXPECT_EQ(fb[0].score(), 1);
  EXPECT_EQ(fb[1].score(), 0);
  EXPECT_EQ(fb[1].comment(), "second");
  EXPECT_THAT(ValueOf(store().FeedbackFor("other")), IsEmpty());
}

// Feedback stored unjoined, then again joined to its arm (as the engine
// does, same request id and time), replaces itself: one record, joined.
TEST_P(StoreContractTest, FeedbackJoinedLaterReplacesItsUnjoinedRecord) {
  v1::Feedback unjoined = MakeFeedback("r", t0() + absl::Microseconds(123), 0);
  ASSERT_OK(store().PutFeedback(unjoined));
  ASSERT_OK(store().PutFeedback(MakeFeedback("other", t0() + absl::Microseconds(123), 1)));
  clock_.Advance(absl::Seconds(5));  // the exchange lands later
  v1::Feedback joined = unjoined;
  joined.set_arm(v1::ARM_CANDIDATE);
  RecordBatch batch;
  batch.Add(joined);
  batch.Add(MakeExchange("r", clock_.Now()));
  ASSERT_OK(store().Write(std::move(batch)));
  EXPECT_THAT(ValueOf(store().FeedbackFor("r")), ElementsAre(EqualsProto(joined)));
  EXPECT_THAT(ValueOf(store().FeedbackFor("other")), SizeIs(1));
  std::vector<v1::Feedback> all;
  ASSERT_OK(store().Visit(RecordKind::kFeedback, absl::InfinitePast(),
                          [&](const google::protobuf::Message& m) {
                            all.push_back(static_cast<const v1::Feedback&>(m));
                            return true;
                          }));
  EXPECT_THAT(all, SizeIs(2));  // no orphaned unjoined copy in a scan (export) either
  // The same record written twice in one batch is one record too.
  v1::Feedback twice = MakeFeedback("twice", t0(), 0.5);
  RecordBatch both;
  both.Add(twice);
  twice.set_arm(v1::ARM_PRODUCTION);
  both.Add(twice);
  ASSERT_OK(store().Write(std::move(both)));
  EXPECT_THAT(ValueOf(store().FeedbackFor("twice")), ElementsAre(EqualsProto(twice)));
  // A different time is a different record (the store does not judge; the
  // engine refuses a second score before it gets here).
  ASSERT_OK(store().PutFeedback(MakeFeedback("r", t0() + absl::Seconds(1), 1)));
  EXPECT_THAT(ValueOf(store().FeedbackFor("r")), SizeIs(2));
}

// ---------------------------------------------------------------- scans --

// ListExchanges is oldest first from `since` (inclusive), up to the limit.
TEST_P(StoreContractTest, ListExchangesIsOldestFirstFromSinceUpToTheLimit) {
  ASSERT_OK(store().PutExchanges({MakeExchange("c", t0() + absl::Seconds(2)), MakeExchange("a", t0()),
                                  MakeExchange("d", t0() + absl::Seconds(3))}));
  ASSERT_OK(store().PutExchange(MakeExchange("b", t0() + absl::Seconds(1))));
  EXPECT_THAT(Ids(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit))),
              ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(Ids(ValueOf(store().ListExchanges(t0() + absl::Seconds(1), kNoLimit))),
              ElementsAre("b", "c", "d"));
  EXPECT_THAT(Ids(ValueOf(store().ListExchanges(t0() + absl::Milliseconds(1001), kNoLimit))),
              ElementsAre("c", "d"));
  EXPECT_THAT(Ids(ValueOf(store().ListExchanges(t0() + absl::Seconds(1), 2))), ElementsAre("b", "c"));
  EXPECT_THAT(Ids(ValueOf(store().ListExchanges(t0() + absl::Seconds(4), kNoLimit))), IsEmpty());
}

// Without filters ListComparisons returns everything, oldest first.
TEST_P(StoreContractTest, ListComparisonsWithoutFiltersIsOldestFirst) {
  ASSERT_OK(store().PutComparisons(
      {MakeComparison("b", t0() + absl::Seconds(1), v1::VERDICT_MAJOR_DIFF, v1::ARM_CANDIDATE),
       MakeComparison("a", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION),
       MakeComparison("c", t0() + absl::Seconds(2), v1::VERDICT_UNSPECIFIED, v1::ARM_UNSPECIFIED)}));
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(ComparisonQuery()))), ElementsAre("a", "b", "c"));
}

// ListComparisons filters by verdict set and live arm, alone and together.
TEST_P(StoreContractTest, ListComparisonsFiltersByVerdictsAndLiveArm) {
  RecordBatch batch;
  batch.Add(MakeComparison("a", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
  batch.Add(MakeComparison("b", t0() + absl::Seconds(1), v1::VERDICT_MAJOR_DIFF, v1::ARM_PRODUCTION));
  batch.Add(MakeComparison("c", t0() + absl::Seconds(2), v1::VERDICT_MAJOR_DIFF, v1::ARM_CANDIDATE));
  batch.Add(MakeComparison("d", t0() + absl::Seconds(3), v1::VERDICT_MINOR_DIFF, v1::ARM_PRODUCTION));
  ASSERT_OK(store().Write(std::move(batch)));

  ComparisonQuery q;
  q.verdicts = {v1::VERDICT_MAJOR_DIFF, v1::VERDICT_MINOR_DIFF};
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("b", "c", "d"));
  q.live_arm = v1::ARM_PRODUCTION;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("b", "d"));
  q = ComparisonQuery();
  q.live_arm = v1::ARM_CANDIDATE;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("c"));
  q = ComparisonQuery();
  q.verdicts = {v1::VERDICT_CANDIDATE_ERROR};
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), IsEmpty());
}

// since and until are both inclusive; until before since matches nothing.
TEST_P(StoreContractTest, ListComparisonsFiltersByAnInclusiveTimeRange) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(store().PutComparison(MakeComparison(std::string(1, static_cast<char>('a' + i)),
                                                   t0() + absl::Seconds(i), v1::VERDICT_EQUIVALENT,
                                                   v1::ARM_PRODUCTION)));
  }
  ComparisonQuery q;
  q.since = t0() + absl::Seconds(1);
  q.until = t0() + absl::Seconds(2);
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("b", "c"));
  q.newest_first = true;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("c", "b"));
  q = ComparisonQuery();
  q.until = t0() + absl::Seconds(1);
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("a", "b"));
  q = ComparisonQuery();
  q.since = t0() + absl::Seconds(3);
  q.until = t0() + absl::Seconds(1);
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), IsEmpty());
  q.newest_first = true;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), IsEmpty());
}

// newest_first walks backwards from until down to since, up to the limit.
TEST_P(StoreContractTest, ListComparisonsNewestFirstHonoursLimitUntilAndSince) {
  RecordBatch batch;
  batch.Add(MakeComparison("a", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
  batch.Add(MakeComparison("b", t0() + absl::Seconds(1), v1::VERDICT_MAJOR_DIFF, v1::ARM_PRODUCTION));
  batch.Add(MakeComparison("c", t0() + absl::Seconds(2), v1::VERDICT_MAJOR_DIFF, v1::ARM_CANDIDATE));
  batch.Add(MakeComparison("d", t0() + absl::Seconds(3), v1::VERDICT_MINOR_DIFF, v1::ARM_PRODUCTION));
  ASSERT_OK(store().Write(std::move(batch)));

  ComparisonQuery q;
  q.newest_first = true;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("d", "c", "b", "a"));
  q.limit = 2;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("d", "c"));
  q.until = t0() + absl::Seconds(2);
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("c", "b"));
  q.limit = 100;
  q.since = t0() + absl::Seconds(1);
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("c", "b"));
  q.verdicts = {v1::VERDICT_MAJOR_DIFF};
  q.live_arm = v1::ARM_PRODUCTION;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("b"));
}

// The limit counts matching comparisons, not the ones skipped by filters.
TEST_P(StoreContractTest, ListComparisonsLimitCountsOnlyMatchingComparisons) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK(store().PutComparison(MakeComparison(
        absl::StrCat("r", i), t0() + absl::Seconds(i),
        i % 2 == 0 ? v1::VERDICT_EQUIVALENT : v1::VERDICT_MAJOR_DIFF, v1::ARM_PRODUCTION)));
  }
  ComparisonQuery q;
  q.verdicts = {v1::VERDICT_MAJOR_DIFF};
  q.limit = 2;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("r1", "r3"));
  q.newest_first = true;
  EXPECT_THAT(Ids(ValueOf(store().ListComparisons(q))), ElementsAre("r5", "r3"));
}

// A default query returns at most 100 comparisons, the oldest ones.
TEST_P(StoreContractTest, ListComparisonsReturnsAtMostOneHundredByDefault) {
  std::vector<v1::Comparison> many;
  for (int i = 0; i < 101; ++i) {
    many.push_back(MakeComparison(absl::StrCat("r", i), t0() + absl::Milliseconds(i),
                                  v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
  }
  ASSERT_OK(store().PutComparisons(std::move(many)));
  std::vector<v1::Comparison> listed = ValueOf(store().ListComparisons(ComparisonQuery()));
  ASSERT_THAT(listed, SizeIs(100));
  EXPECT_EQ(listed.front().request_id(), "r0");
  EXPECT_EQ(listed.back().request_id(), "r99");
}

// Health snapshots are a time series from `since`, oldest first.
TEST_P(StoreContractTest, HealthSeriesIsOldestFirstFromSinceUpToTheLimit) {
  for (int i : {3, 0, 4, 1, 2}) ASSERT_OK(store().PutHealth(MakeHealth(t0() + absl::Minutes(i), i)));
  EXPECT_THAT(CandidateRequests(ValueOf(store().HealthSeries(absl::InfinitePast()))),
              ElementsAre(0, 1, 2, 3, 4));
  EXPECT_THAT(CandidateRequests(ValueOf(store().HealthSeries(t0() + absl::Minutes(2)))),
              ElementsAre(2, 3, 4));
  EXPECT_THAT(CandidateRequests(ValueOf(store().HealthSeries(t0() + absl::Minutes(2), 2))),
              ElementsAre(2, 3));
}

// Health snapshots of the same millisecond are all kept, in write order.
TEST_P(StoreContractTest, HealthSnapshotsOfTheSameMillisecondKeepWriteOrder) {
  RecordBatch batch;
  for (int i = 0; i < 3; ++i) batch.Add(MakeHealth(t0(), i));
  ASSERT_OK(store().Write(std::move(batch)));
  ASSERT_OK(store().PutHealth(MakeHealth(t0(), 3)));
  EXPECT_THAT(CandidateRequests(ValueOf(store().HealthSeries(absl::InfinitePast()))),
              ElementsAre(0, 1, 2, 3));
}

// The decision log lists oldest first from `since`, up to the limit.
TEST_P(StoreContractTest, ListDecisionsIsOldestFirstFromSinceUpToTheLimit) {
  ASSERT_OK(store().AppendDecision(MakeDecision("b", t0() + absl::Minutes(1), 2)));
  ASSERT_OK(store().AppendDecision(MakeDecision("a", t0(), 1)));
  ASSERT_OK(store().CommitTransition(MakeState(v1::PHASE_CANARY, 500, 3),
                                     MakeDecision("c", t0() + absl::Minutes(2), 3)));
  EXPECT_THAT(Reasons(ValueOf(store().ListDecisions(absl::InfinitePast(), 10))), ElementsAre("a", "b", "c"));
  EXPECT_THAT(Reasons(ValueOf(store().ListDecisions(t0() + absl::Minutes(1), 10))), ElementsAre("b", "c"));
  EXPECT_THAT(Reasons(ValueOf(store().ListDecisions(absl::InfinitePast(), 2))), ElementsAre("a", "b"));
}

// Decisions appended in the same millisecond keep their append order.
TEST_P(StoreContractTest, DecisionsOfTheSameMillisecondKeepAppendOrder) {
  ASSERT_OK(store().AppendDecision(MakeDecision("a", t0(), 1)));
  ASSERT_OK(store().AppendDecision(MakeDecision("b", t0(), 2)));
  ASSERT_OK(store().CommitTransition(MakeState(v1::PHASE_CANARY, 100, 3), MakeDecision("c", t0(), 3)));
  ASSERT_OK(store().AppendDecision(MakeDecision("d", t0(), 4)));
  clock_.Advance(absl::Minutes(1));
  v1::Decision unstamped = MakeDecision("e", absl::UnixEpoch(), 5);
  unstamped.clear_time_unix_micros();
  ASSERT_OK(store().AppendDecision(unstamped));
  EXPECT_THAT(Reasons(ValueOf(store().ListDecisions(absl::InfinitePast(), 10))),
              ElementsAre("a", "b", "c", "d", "e"));
  std::vector<v1::Decision> recent = ValueOf(store().ListDecisions(clock_.Now() - absl::Seconds(1), 10));
  ASSERT_THAT(Reasons(recent), ElementsAre("e"));
  EXPECT_EQ(recent[0].time_unix_micros(), Micros(clock_.Now()));
}

// A limit of 0 returns nothing from every scan.
TEST_P(StoreContractTest, ZeroLimitReturnsNothing) {
  ASSERT_OK(store().PutExchange(MakeExchange("r", t0())));
  ASSERT_OK(store().PutComparison(MakeComparison("r", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)));
  ASSERT_OK(store().PutHealth(MakeHealth(t0(), 1)));
  ASSERT_OK(store().AppendDecision(MakeDecision("d", t0(), 1)));
  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfinitePast(), 0)), IsEmpty());
  ComparisonQuery q;
  q.limit = 0;
  EXPECT_THAT(ValueOf(store().ListComparisons(q)), IsEmpty());
  q.newest_first = true;
  EXPECT_THAT(ValueOf(store().ListComparisons(q)), IsEmpty());
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfinitePast(), 0)), IsEmpty());
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfinitePast(), 0)), IsEmpty());
}

// Scans of an empty store and scans from the infinite future find nothing.
TEST_P(StoreContractTest, ScansOfNothingAreEmptyNotErrors) {
  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit)), IsEmpty());
  EXPECT_THAT(ValueOf(store().ListComparisons(ComparisonQuery())), IsEmpty());
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfinitePast())), IsEmpty());
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfinitePast(), kNoLimit)), IsEmpty());
  ASSERT_OK(store().PutExchange(MakeExchange("r", t0())));
  ASSERT_OK(store().PutComparison(MakeComparison("r", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)));
  ASSERT_OK(store().PutHealth(MakeHealth(t0(), 1)));
  ASSERT_OK(store().AppendDecision(MakeDecision("d", t0(), 1)));
  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfiniteFuture(), kNoLimit)), IsEmpty());
  ComparisonQuery q;
  q.since = absl::InfiniteFuture();
  EXPECT_THAT(ValueOf(store().ListComparisons(q)), IsEmpty());
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfiniteFuture())), IsEmpty());
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfiniteFuture(), kNoLimit)), IsEmpty());
}

// -------------------------------------------------------- rollout state --

// Before any state is saved, loading it is NotFound (the controller starts from its plan).
TEST_P(StoreContractTest, LoadRolloutStateIsNotFoundBeforeAnyStateIsSaved) {
  EXPECT_THAT(store().LoadRolloutState(), StatusIs(absl::StatusCode::kNotFound, "rollout state"));
  ASSERT_OK(store().AppendDecision(MakeDecision("no state", t0(), 1)));
  EXPECT_THAT(store().LoadRolloutState(), StatusIs(absl::StatusCode::kNotFound, "rollout state"));
}

// SaveRolloutState replaces the state and writes no decision.
TEST_P(StoreContractTest, SaveRolloutStateReplacesTheStateAndAppendsNoDecision) {
  v1::RolloutState first = MakeState(v1::PHASE_SHADOW, 0, 1);
  first.set_plan_fingerprint("plan-a");
  v1::RolloutState second = MakeState(v1::PHASE_PAUSED, 2500, 2);
  second.set_paused_reason("operator");
  second.set_phase_before_pause(v1::PHASE_CANARY);
  second.set_stage_started_unix_micros(Micros(t0()));
  ASSERT_OK(store().SaveRolloutState(first));
  EXPECT_THAT(ValueOf(store().LoadRolloutState()), EqualsProto(first));
  ASSERT_OK(store().SaveRolloutState(second));
  EXPECT_THAT(ValueOf(store().LoadRolloutState()), EqualsProto(second));
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfinitePast(), kNoLimit)), IsEmpty());
}

// A state with every field at its default is stored: found, not NotFound.
TEST_P(StoreContractTest, DefaultRolloutStateIsStoredAndFound) {
  ASSERT_OK(store().SaveRolloutState(v1::RolloutState()));
  EXPECT_THAT(ValueOf(store().LoadRolloutState()), EqualsProto(v1::RolloutState()));
}

// AppendDecision appends to the log and leaves the rollout state alone.
TEST_P(StoreContractTest, AppendDecisionLeavesTheRolloutStateAlone) {
  const v1::RolloutState state = MakeState(v1::PHASE_CANARY, 100, 1);
  ASSERT_OK(store().SaveRolloutState(state));
  v1::Decision decision = MakeDecision("hold", t0(), 2);
  decision.mutable_from()->set_version(1);
  v1::GateEvaluation* gate = decision.add_gates();
  gate->set_gate("error_rate");
  gate->set_outcome(v1::GATE_INCONCLUSIVE);
  decision.add_trigger_request_ids("req-9");
  ASSERT_OK(store().AppendDecision(decision));
  EXPECT_THAT(ValueOf(store().LoadRolloutState()), EqualsProto(state));
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfinitePast(), kNoLimit)),
              ElementsAre(EqualsProto(decision)));
}

// CommitTransition stores the new state and appends its decision together.
TEST_P(StoreContractTest, CommitTransitionStoresStateAndDecisionTogether) {
  ASSERT_OK(store().SaveRolloutState(MakeState(v1::PHASE_SHADOW, 0, 6)));
  v1::RolloutState state = MakeState(v1::PHASE_CANARY, 500, 7);
  state.set_stage_index(2);
  state.set_last_reason("gates passed");
  const v1::Decision decision = MakeDecision("gates passed", t0(), 7);
  ASSERT_OK(store().CommitTransition(state, decision));
  EXPECT_THAT(ValueOf(store().LoadRolloutState()), EqualsProto(state));
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfinitePast(), 10)), ElementsAre(EqualsProto(decision)));

  clock_.Advance(absl::Minutes(1));
  const v1::RolloutState rolled_back = MakeState(v1::PHASE_ROLLED_BACK, 0, 8);
  ASSERT_OK(store().CommitTransition(rolled_back, MakeDecision("rollback", clock_.Now(), 8)));
  EXPECT_THAT(ValueOf(store().LoadRolloutState()), EqualsProto(rolled_back));
  EXPECT_THAT(Reasons(ValueOf(store().ListDecisions(absl::InfinitePast(), 10))),
              ElementsAre("gates passed", "rollback"));
}

// ---------------------------------------------------------------- Visit --

// Visit passes each kind's records from `since`, oldest first, as that kind's message.
TEST_P(StoreContractTest, VisitCallsBackForEveryRecordOfAKindOldestFirstFromSince) {
  const absl::Time t1 = t0() + absl::Seconds(1);
  const absl::Time t2 = t0() + absl::Seconds(2);
  RecordBatch batch;
  batch.Add(MakeExchange("x2", t2));
  batch.Add(MakeExchange("x0", t0()));
  batch.Add(MakeExchange("x1", t1));
  batch.Add(MakeComparison("c1", t1, v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
  batch.Add(MakeComparison("c0", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
  batch.Add(MakeFeedback("f1", t1, 1));
  batch.Add(MakeFeedback("f0", t0(), 1));
  batch.Add(MakeHealth(t2, 2));
  batch.Add(MakeHealth(t1, 1));
  ASSERT_OK(store().Write(std::move(batch)));
  ASSERT_OK(store().AppendDecision(MakeDecision("d1", t1, 1)));
  ASSERT_OK(store().AppendDecision(MakeDecision("d0", t0(), 1)));

  auto visit = [this](RecordKind kind, absl::Time since) {
    std::vector<std::string> seen;
    EXPECT_OK(store().Visit(kind, since, [&](const google::protobuf::Message& m) {
      if (const auto* e = dynamic_cast<const v1::Exchange*>(&m)) seen.push_back(e->request_id());
      if (const auto* c = dynamic_cast<const v1::Comparison*>(&m)) seen.push_back(c->request_id());
      if (const auto* f = dynamic_cast<const v1::Feedback*>(&m)) seen.push_back(f->request_id());
      if (const auto* d = dynamic_cast<const v1::Decision*>(&m)) seen.push_back(d->reason());
      if (const auto* h = dynamic_cast<const v1::HealthSnapshot*>(&m)) {
        seen.push_back(absl::StrCat("h", h->candidate().requests()));
      }
      return true;
    }));
    return seen;
  };
  EXPECT_THAT(visit(RecordKind::kExchanges, absl::InfinitePast()), ElementsAre("x0", "x1", "x2"));
  EXPECT_THAT(visit(RecordKind::kExchanges, t1), ElementsAre("x1", "x2"));
  EXPECT_THAT(visit(RecordKind::kComparisons, absl::InfinitePast()), ElementsAre("c0", "c1"));
  EXPECT_THAT(visit(RecordKind::kComparisons, t1), ElementsAre("c1"));
  EXPECT_THAT(visit(RecordKind::kFeedback, absl::InfinitePast()), ElementsAre("f0", "f1"));
  EXPECT_THAT(visit(RecordKind::kFeedback, t2), IsEmpty());
  EXPECT_THAT(visit(RecordKind::kDecisions, absl::InfinitePast()), ElementsAre("d0", "d1"));
  EXPECT_THAT(visit(RecordKind::kDecisions, t1), ElementsAre("d1"));
  EXPECT_THAT(visit(RecordKind::kHealth, absl::InfinitePast()), ElementsAre("h1", "h2"));
  EXPECT_THAT(visit(RecordKind::kHealth, t2), ElementsAre("h2"));
}

// Visit stops as soon as the callback returns false.
TEST_P(StoreContractTest, VisitStopsWhenTheCallbackReturnsFalse) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK(store().PutExchange(MakeExchange(absl::StrCat("r", i), t0() + absl::Seconds(i))));
  }
  std::vector<std::string> seen;
  ASSERT_OK(store().Visit(RecordKind::kExchanges, absl::InfinitePast(),
                          [&](const google::protobuf::Message& m) {
                            seen.push_back(static_cast<const v1::Exchange&>(m).request_id());
                            return seen.size() < 2;
                          }));
  EXPECT_THAT(seen, ElementsAre("r0", "r1"));
}

// Visiting a kind with no records succeeds without calling back.
TEST_P(StoreContractTest, VisitOfAnEmptyKindCallsNothing) {
  ASSERT_OK(store().PutExchange(MakeExchange("r", t0())));
  for (RecordKind kind : {RecordKind::kComparisons, RecordKind::kFeedback, RecordKind::kDecisions,
                          RecordKind::kHealth}) {
    int calls = 0;
    EXPECT_OK(store().Visit(kind, absl::InfinitePast(), [&](const google::protobuf::Message&) {
      ++calls;
      return true;
    }));
    EXPECT_EQ(calls, 0) << RecordKindName(kind);
  }
}

// A RecordKind outside the enum is bad input.
TEST_P(StoreContractTest, VisitOfAnUnknownKindIsInvalidArgument) {
  EXPECT_THAT(store().Visit(static_cast<RecordKind>(42), absl::InfinitePast(),
                            [](const google::protobuf::Message&) { return true; }),
              StatusIs(absl::StatusCode::kInvalidArgument, ""));
}

// ------------------------------------------------------------ retention --

// EnforceRetention keeps recent records, the rollout state and the decision log.
TEST_P(StoreContractTest, EnforceRetentionKeepsRecentRecordsStateAndDecisions) {
  // Deleting expired records is not asserted: the fake's retention does nothing.
  ASSERT_OK(store().PutExchange(MakeExchange("r", t0())));
  ASSERT_OK(store().PutComparison(MakeComparison("r", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)));
  ASSERT_OK(store().PutFeedback(MakeFeedback("r", t0(), 1)));
  ASSERT_OK(store().PutHealth(MakeHealth(t0(), 1)));
  ASSERT_OK(store().CommitTransition(MakeState(v1::PHASE_CANARY, 100, 1), MakeDecision("d", t0(), 1)));
  clock_.Advance(absl::Hours(1));
  ASSERT_OK(store().EnforceRetention());
  EXPECT_THAT(ValueOf(store().GetExchanges("r")), SizeIs(1));
  EXPECT_OK(store().GetComparison("r"));
  EXPECT_THAT(ValueOf(store().FeedbackFor("r")), SizeIs(1));
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfinitePast())), SizeIs(1));
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfinitePast(), kNoLimit)), SizeIs(1));
  EXPECT_OK(store().LoadRolloutState());
}

// ---------------------------------------------------------------- Stats --

// Stats count written records and batches: a transition is one batch of two.
TEST_P(StoreContractTest, StatsCountRecordsAndBatchesWritten) {
  EXPECT_EQ(store().Stats().records_written, 0);
  RecordBatch batch;
  batch.Add(MakeExchange("r", t0()));
  batch.Add(MakeComparison("r", t0(), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
  batch.Add(MakeFeedback("r", t0(), 1));
  batch.Add(MakeHealth(t0(), 1));
  ASSERT_OK(store().Write(std::move(batch)));
  ASSERT_OK(store().SaveRolloutState(MakeState(v1::PHASE_SHADOW, 0, 1)));
  ASSERT_OK(store().AppendDecision(MakeDecision("a", t0(), 1)));
  ASSERT_OK(store().CommitTransition(MakeState(v1::PHASE_CANARY, 100, 2), MakeDecision("b", t0(), 2)));
  const StoreStats stats = store().Stats();
  EXPECT_EQ(stats.records_written, 4 + 1 + 1 + 2);
  EXPECT_EQ(stats.batches_written, 4);
  EXPECT_EQ(stats.write_failures, 0);
  EXPECT_EQ(stats.last_error, "");
}

// ----------------------------------------------------------- odd fields --

// An empty request id is a valid key: stored and found by "".
TEST_P(StoreContractTest, EmptyRequestIdsAreStoredAndFound) {
  ASSERT_OK(store().PutExchange(MakeExchange("", t0())));
  ASSERT_OK(store().PutComparison(MakeComparison("", t0(), v1::VERDICT_MINOR_DIFF, v1::ARM_PRODUCTION)));
  ASSERT_OK(store().PutFeedback(MakeFeedback("", t0(), 0.5)));
  ASSERT_OK(store().PutExchange(MakeExchange("a", t0())));
  EXPECT_THAT(ValueOf(store().GetExchanges("")), ElementsAre(EqualsProto(MakeExchange("", t0()))));
  EXPECT_EQ(ValueOf(store().GetComparison("")).verdict(), v1::VERDICT_MINOR_DIFF);
  EXPECT_THAT(Scores(ValueOf(store().FeedbackFor(""))), ElementsAre(0.5));
  EXPECT_THAT(Ids(ValueOf(store().GetExchanges("a"))), ElementsAre("a"));
}

// Records with nothing but a time (and no request id) round-trip unchanged.
TEST_P(StoreContractTest, RecordsWithOnlyATimeRoundTrip) {
  v1::Exchange exchange;
  exchange.set_start_unix_micros(Micros(t0()));
  v1::Comparison comparison;
  comparison.set_time_unix_micros(Micros(t0()));
  v1::Feedback feedback;
  feedback.set_time_unix_micros(Micros(t0()));
  v1::HealthSnapshot health;
  health.set_time_unix_micros(Micros(t0()));
  v1::Decision decision;
  decision.set_time_unix_micros(Micros(t0()));
  ASSERT_OK(store().PutExchange(exchange));
  ASSERT_OK(store().PutComparison(comparison));
  ASSERT_OK(store().PutFeedback(feedback));
  ASSERT_OK(store().PutHealth(health));
  ASSERT_OK(store().AppendDecision(decision));
  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit)),
              ElementsAre(EqualsProto(exchange)));
  EXPECT_THAT(ValueOf(store().ListComparisons(ComparisonQuery())), ElementsAre(EqualsProto(comparison)));
  EXPECT_THAT(ValueOf(store().FeedbackFor("")), ElementsAre(EqualsProto(feedback)));
  EXPECT_THAT(ValueOf(store().HealthSeries(absl::InfinitePast())), ElementsAre(EqualsProto(health)));
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfinitePast(), kNoLimit)),
              ElementsAre(EqualsProto(decision)));
}

// Request ids with non-ASCII UTF-8, separators, control bytes or great length work.
TEST_P(StoreContractTest, UnusualRequestIdsAreStoredAndFound) {
  // No invalid UTF-8: the RocksDB store acknowledges it, then reads it as DataLoss.
  const std::vector<std::string> ids = {"ünïcödé-💥", "with space/and\\slash", "tab\there\x01\x7f",
                                        std::string(4096, 'k')};
  absl::Time t = t0();
  for (const std::string& id : ids) {
    t += absl::Seconds(1);
    RecordBatch batch;
    batch.Add(MakeExchange(id, t));
    batch.Add(MakeComparison(id, t, v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
    batch.Add(MakeFeedback(id, t, 1));
    ASSERT_OK(store().Write(std::move(batch)));
  }
  for (const std::string& id : ids) {
    EXPECT_THAT(Ids(ValueOf(store().GetExchanges(id))), ElementsAre(id));
    EXPECT_EQ(ValueOf(store().GetComparison(id)).request_id(), id);
    EXPECT_THAT(Ids(ValueOf(store().FeedbackFor(id))), ElementsAre(id));
  }
  EXPECT_THAT(Ids(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit))),
              ::testing::ElementsAreArray(ids));
}

// ---------------------------------------------------------- concurrency --

// Writers and readers on several threads at once lose nothing.
TEST_P(StoreContractTest, ConcurrentWritersLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = absl::StrCat("t", t, "-", i);
        const absl::Time when = t0() + absl::Milliseconds(t * kPerThread + i);
        RecordBatch batch;
        batch.Add(MakeExchange(id, when));
        batch.Add(MakeFeedback(id, when, 1));
        EXPECT_OK(store().Write(std::move(batch)));
        EXPECT_OK(store().AppendDecision(MakeDecision(id, when, i)));
        EXPECT_THAT(ValueOf(store().GetExchanges(id)), SizeIs(1));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  constexpr size_t kTotal = kThreads * kPerThread;
  EXPECT_THAT(ValueOf(store().ListExchanges(absl::InfinitePast(), kNoLimit)), SizeIs(kTotal));
  EXPECT_THAT(ValueOf(store().ListDecisions(absl::InfinitePast(), kNoLimit)), SizeIs(kTotal));
  EXPECT_THAT(ValueOf(store().FeedbackFor("t3-24")), SizeIs(1));
  EXPECT_EQ(store().Stats().records_written, static_cast<int64_t>(3 * kTotal));
}

INSTANTIATE_TEST_SUITE_P(Implementations, StoreContractTest,
                         ::testing::Values(StoreFactory{"RocksDb", OpenRocks},
                                           StoreFactory{"Fake", OpenFake}),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; });

}  // namespace
}  // namespace understudy::storage
