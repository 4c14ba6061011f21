#include "coordination/fleet.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "common/strings.h"

namespace understudy::coordination {

namespace v1 = understudy::v1;
namespace pb = etcdserverpb;

namespace {

constexpr size_t kChunkBytes = 512 * 1024;  // under etcd's 1.5 MiB request limit

std::string DefaultMember() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device rd;
  return absl::StrFormat("%s-%d-%04x", host[0] ? host : "sidecar", getpid(), rd() & 0xffff);
}

}  // namespace

struct Fleet::Impl {
  FleetOptions options;
  const Clock& clock;
  FleetLocal local;
  std::unique_ptr<EtcdClient> etcd;
  rollout::Controller* controller = nullptr;

  // Keys.
  std::string p, state_key, leader_key, judge_key, members, deltas, evidence, decisions;
  std::string my_member_key, my_deltas;

  mutable absl::Mutex mu;
  // The state this replica routes by and the state key's revision it had
  // when written: a commit compares against it.
  int64_t known_version ABSL_GUARDED_BY(mu) = -1;
  int64_t known_mod_rev ABSL_GUARDED_BY(mu) = 0;
  // The newest decision written to the local store (each is written once).
  int64_t local_version ABSL_GUARDED_BY(mu) = -1;
  int64_t lease ABSL_GUARDED_BY(mu) = 0;
  absl::Time lease_renewed ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  bool is_leader ABSL_GUARDED_BY(mu) = false;
  int64_t leader_rev ABSL_GUARDED_BY(mu) = 0;  // create revision of our leader key
  bool needs_evidence ABSL_GUARDED_BY(mu) = true;
  std::string leader_name ABSL_GUARDED_BY(mu);
  bool reachable ABSL_GUARDED_BY(mu) = false;
  absl::Time last_contact ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  std::string error ABSL_GUARDED_BY(mu);
  int64_t members_count ABSL_GUARDED_BY(mu) = 0;
  std::optional<v1::HealthSnapshot> leader_health ABSL_GUARDED_BY(mu);
  bool wake ABSL_GUARDED_BY(mu) = false;
  bool stopping ABSL_GUARDED_BY(mu) = false;
  std::unique_ptr<EtcdWatch> watch ABSL_GUARDED_BY(mu);

  // Ticks (one ticker thread): unsent deltas, merged delta keys awaiting
  // deletion, evidence generations.
  absl::Mutex tick_mu ABSL_ACQUIRED_BEFORE(mu);
  std::deque<std::string> unsent ABSL_GUARDED_BY(tick_mu);
  std::vector<std::string> merged_keys ABSL_GUARDED_BY(tick_mu);
  int64_t delta_seq ABSL_GUARDED_BY(tick_mu) = 0;
  int64_t generation ABSL_GUARDED_BY(tick_mu) = 0;

  std::atomic<int64_t> deltas_published{0}, deltas_merged{0}, deltas_discarded{0},
      deltas_dropped{0}, states_adopted{0}, commits_refused{0};

  std::thread session_thread, watch_thread;

  Impl(FleetOptions o, const Clock& c, FleetLocal l)
      : options(std::move(o)), clock(c), local(std::move(l)) {
    p = options.prefix;
    if (p.empty() || p.back() != '/') p.push_back('/');
    // Watched keys sort together: judge < leader < members/ < state.
    state_key = p + "state";
    leader_key = p + "leader";
    judge_key = p + "judge";
    members = p + "members/";
    deltas = p + "deltas/";
    evidence = p + "evidence/";
    decisions = p + "decisions/";
    if (options.member.empty()) options.member = DefaultMember();
    my_member_key = members + options.member;
    my_deltas = deltas + options.member + "/";
  }

  // ------------------------------------------------------------ contact
  template <typename T>
  bool Note(const absl::StatusOr<T>& r) {
    return Note(r.status());
  }
  bool Note(const absl::Status& s) {
    absl::MutexLock lock(&mu);
    const bool unreachable = absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s);
    if (s.ok()) {
      reachable = true;
      last_contact = clock.Now();
      error.clear();
    } else {
      if (unreachable) reachable = false;
      error = s.ToString();
    }
    return s.ok();
  }

  bool LeaseFresh() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return lease != 0 && clock.Now() - lease_renewed < options.lease_ttl;
  }

  void StepDown(std::string_view why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (is_leader) {
      std::fprintf(stderr, "understudy: fleet: %s no longer leads (%s)\n",
                   options.member.c_str(), std::string(why).c_str());
    }
    is_leader = false;
    leader_rev = 0;
    needs_evidence = true;
  }

  // WriteLocal writes a decision to this replica's store once (the commit,
  // the watch and a catch-up may all see it).
  void WriteLocal(const v1::RolloutState& state, const v1::Decision& decision) {
    if (!local.commit) return;
    {
      absl::MutexLock lock(&mu);
      if (state.version() <= local_version) return;
      local_version = state.version();
    }
    absl::Status s = local.commit(state, decision);
    if (!s.ok()) {
      std::fprintf(stderr, "understudy: fleet: local decision log write failed: %s\n",
                   s.ToString().c_str());
    }
  }

  // ------------------------------------------------------------ state
  // ApplyCommit adopts a state another replica committed (from the watch
  // or a refresh), and writes it to the local store.
  void ApplyCommit(const pb::KeyValue& kv, bool write_local = true) {
    v1::FleetCommit c;
    if (!c.ParseFromString(kv.value())) {
      absl::MutexLock lock(&mu);
      error = "fleet state: unparseable record in " + state_key;
      return;
    }
    absl::StatusOr<bool> adopted = controller->Adopt(c.state());
    if (!adopted.ok()) {
      absl::MutexLock lock(&mu);
      error = absl::StrCat("fleet state: ", adopted.status().message());
      return;
    }
    if (*adopted) {
      states_adopted.fetch_add(1);
      if (write_local && c.has_decision()) WriteLocal(c.state(), c.decision());
    }
    absl::MutexLock lock(&mu);
    if (c.state().version() >= known_version) {
      known_version = c.state().version();
      known_mod_rev = kv.mod_revision();
    }
  }

  void ApplyJudge(const pb::KeyValue& kv) {
    v1::FleetJudge j;
    if (!j.ParseFromString(kv.value())) return;
    controller->SetDeltaThresholds(j.latency_threshold_ms(), j.ttft_threshold_ms());
    absl::MutexLock lock(&mu);
    leader_health = j.health();
  }

  void ApplyLeader(const pb::KeyValue* kv) {
    absl::MutexLock lock(&mu);
    if (kv == nullptr) {  // no leader: campaign now
      leader_name.clear();
      if (is_leader) StepDown("leader key deleted");
      wake = true;
      return;
    }
    leader_name = kv->value();
    if (is_leader && kv->create_revision() != leader_rev) StepDown("another replica leads");
  }

  // Sync reads the watched keys at one revision and applies them; returns
  // that revision (0 on failure).
  int64_t Sync() {
    pb::TxnRequest t;
    *t.add_success() = RangeOp(state_key);
    *t.add_success() = RangeOp(leader_key);
    *t.add_success() = RangeOp(judge_key);
    pb::RequestOp members_op = RangeOp(members, PrefixEnd(members));
    members_op.mutable_request_range()->set_count_only(true);
    *t.add_success() = members_op;
    absl::StatusOr<pb::TxnResponse> r = etcd->Txn(t);
    if (!Note(r) || r->responses_size() != 4) return 0;
    int64_t before;
    {
      absl::MutexLock lock(&mu);  // never while calling the controller (Commit's order)
      before = known_version;
    }
    if (before < 0) before = controller->State().version();
    const pb::RangeResponse& state = r->responses(0).response_range();
    if (state.kvs_size() == 1) {
      JoinState(state.kvs(0));
    } else {
      CreateState();
    }
    const pb::RangeResponse& leader = r->responses(1).response_range();
    ApplyLeader(leader.kvs_size() == 1 ? &leader.kvs(0) : nullptr);
    const pb::RangeResponse& judge = r->responses(2).response_range();
    if (judge.kvs_size() == 1) ApplyJudge(judge.kvs(0));
    {
      absl::MutexLock lock(&mu);
      members_count = r->responses(3).response_range().count();
    }
    CatchUpDecisions(before);
    return r->header().revision();
  }

  // JoinState: the fleet's state wins over what this replica knew. A newer
  // one is adopted as a transition; an older or different one (etcd was
  // restored, or this replica ran alone) replaces it outright.
  void JoinState(const pb::KeyValue& kv) {
    v1::FleetCommit c;
    if (!c.ParseFromString(kv.value())) {
      absl::MutexLock lock(&mu);
      error = "fleet state: unparseable record in " + state_key;
      return;
    }
    const v1::RolloutState mine = controller->State();
    if (c.state().SerializeAsString() != mine.SerializeAsString()) {
      if (c.state().version() > mine.version()) {
        ApplyCommit(kv, /*write_local=*/false);  // CatchUpDecisions writes it
        return;
      }
      if (absl::Status s = controller->Restore(c.state()); !s.ok()) {
        absl::MutexLock lock(&mu);
        error = absl::StrCat("fleet state: ", s.message());
        return;
      }
      if (local.save_state) (void)local.save_state(c.state());
    }
    absl::MutexLock lock(&mu);
    known_version = c.state().version();
    known_mod_rev = kv.mod_revision();
  }

  // CreateState: the first replica of a fleet writes its state.
  void CreateState() {
    v1::FleetCommit c;
    *c.mutable_state() = controller->State();
    pb::TxnRequest t;
    *t.add_compare() = CompareCreateRevision(state_key, 0);
    *t.add_success() = PutOp(state_key, c.SerializeAsString());
    absl::StatusOr<pb::TxnResponse> r = etcd->Txn(t);
    if (!Note(r)) return;
    if (r->succeeded()) {
      absl::MutexLock lock(&mu);
      known_version = c.state().version();
      known_mod_rev = r->header().revision();
    }
    // Lost the race: the watch (or the next sync) brings the winner's.
  }

  // CatchUpDecisions copies the decisions after state version `after`
  // that this replica missed (it was down, or etcd was away) into its local
  // store, so its report has the whole log.
  void CatchUpDecisions(int64_t after) {
    if (!local.commit) return;
    const std::string from = absl::StrFormat("%s%020d", decisions, after + 1);
    absl::StatusOr<pb::RangeResponse> r = etcd->Range(from, PrefixEnd(decisions));
    if (!Note(r)) return;
    for (const pb::KeyValue& kv : r->kvs()) {
      v1::Decision d;
      if (d.ParseFromString(kv.value())) WriteLocal(d.to(), d);
    }
  }

  // ------------------------------------------------------------ session
  void SessionLoop() {
    const absl::Duration period =
        std::min(absl::Seconds(1), std::max(absl::Milliseconds(100), options.lease_ttl / 4));
    while (true) {
      {
        absl::MutexLock lock(&mu);
        auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return wake || stopping; };
        mu.AwaitWithTimeout(absl::Condition(&woken), period);
        if (stopping) return;
        wake = false;
      }
      KeepLease();
      Campaign();
    }
  }

  void KeepLease() {
    int64_t id;
    {
      absl::MutexLock lock(&mu);
      id = lease;
    }
    if (id != 0) {
      absl::StatusOr<int64_t> ttl = etcd->LeaseKeepAlive(id);
      if (ttl.ok()) {
        Note(absl::OkStatus());
        absl::MutexLock lock(&mu);
        lease_renewed = clock.Now();
        return;
      }
      Note(absl::IsNotFound(ttl.status()) ? absl::OkStatus() : ttl.status());
      absl::MutexLock lock(&mu);
      if (absl::IsNotFound(ttl.status()) || !LeaseFresh()) {
        lease = 0;  // expired: its keys (member, deltas, leadership) are gone
        StepDown("lease expired");
      } else {
        return;  // keep trying while the lease may still be alive
      }
    }
    absl::StatusOr<int64_t> granted = etcd->LeaseGrant(options.lease_ttl);
    if (!Note(granted)) return;
    v1::FleetMember m;
    m.set_name(options.member);
    char host[256] = {0};
    if (gethostname(host, sizeof(host) - 1) == 0) m.set_host(host);
    m.set_pid(getpid());
    m.set_started_unix_micros(absl::ToUnixMicros(clock.Now()));
    if (!Note(etcd->Put(my_member_key, m.SerializeAsString(), *granted))) return;
    absl::MutexLock lock(&mu);
    lease = *granted;
    lease_renewed = clock.Now();
  }

  void Campaign() {
    int64_t id;
    {
      absl::MutexLock lock(&mu);
      if (is_leader || !LeaseFresh()) return;
      id = lease;
    }
    pb::TxnRequest t;
    *t.add_compare() = CompareCreateRevision(leader_key, 0);
    *t.add_success() = PutOp(leader_key, options.member, id);
    *t.add_failure() = RangeOp(leader_key);
    absl::StatusOr<pb::TxnResponse> r = etcd->Txn(t);
    if (!Note(r)) return;
    absl::MutexLock lock(&mu);
    if (r->succeeded()) {
      is_leader = true;
      leader_rev = r->header().revision();
      leader_name = options.member;
      needs_evidence = true;
      std::fprintf(stderr, "understudy: fleet: %s leads (lease %lld)\n", options.member.c_str(),
                   static_cast<long long>(id));
    } else if (r->responses_size() == 1 &&
               r->responses(0).response_range().kvs_size() == 1) {
      leader_name = r->responses(0).response_range().kvs(0).value();
    }
  }

  // ------------------------------------------------------------ watch
  void WatchLoop() {
    absl::Duration backoff = absl::Milliseconds(100);
    while (true) {
      {
        absl::MutexLock lock(&mu);
        if (stopping) return;
      }
      const int64_t rev = Sync();
      if (rev == 0) {
        BackOff(backoff);
        backoff = std::min(backoff * 2, absl::Seconds(2));
        continue;
      }
      backoff = absl::Milliseconds(100);
      // judge, leader, members/ and state sort together (see the keys).
      std::unique_ptr<EtcdWatch> w = etcd->Watch(judge_key, state_key + std::string(1, '\0'),
                                                 rev + 1);
      EtcdWatch* raw = w.get();
      {
        absl::MutexLock lock(&mu);
        if (stopping) return;
        watch = std::move(w);
      }
      pb::WatchResponse resp;
      while (raw->Next(&resp)) {
        Note(absl::OkStatus());
        for (const pb::Event& e : resp.events()) HandleEvent(e);
      }
      absl::Status why = raw->status();
      {
        absl::MutexLock lock(&mu);
        watch.reset();
        if (stopping) return;
      }
      if (!absl::IsOutOfRange(why)) Note(why);
      BackOff(absl::Milliseconds(100));
    }
  }

  void HandleEvent(const pb::Event& e) {
    const std::string& key = e.kv().key();
    const bool put = e.type() == pb::Event::PUT;
    if (key == state_key) {
      if (put) ApplyCommit(e.kv());
    } else if (key == leader_key) {
      ApplyLeader(put ? &e.kv() : nullptr);
    } else if (key == judge_key) {
      if (put) ApplyJudge(e.kv());
    } else if (absl::StartsWith(key, members)) {
      absl::MutexLock lock(&mu);
      if (put && e.kv().version() == 1) ++members_count;
      if (!put) members_count = std::max<int64_t>(0, members_count - 1);
    }
  }

  // BackOff sleeps `d` after a failed sync or watch, or until Stop. It also
  // wakes as soon as another call (the session's keep-alive, at least once
  // a second) gets through to etcd after an outage, so the replica resyncs
  // at once instead of lagging the fleet by the rest of its backoff. It
  // wakes only when the state turns reachable: a sync that fails while etcd
  // answers still waits its time.
  void BackOff(absl::Duration d) {
    absl::MutexLock lock(&mu);
    const bool was_reachable = reachable;
    auto done = [this, was_reachable]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return stopping || (!was_reachable && reachable);
    };
    mu.AwaitWithTimeout(absl::Condition(&done), d);
  }

  // ------------------------------------------------------------ ticks
  void Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(tick_mu) {
    v1::JudgeEvidence d = controller->TakeEvidenceDelta();
    if (!rollout::IsEmptyDelta(d)) {
      unsent.push_back(d.SerializeAsString());
      while (static_cast<int>(unsent.size()) > options.max_unsent_deltas) {
        unsent.pop_front();
        deltas_dropped.fetch_add(1);
      }
    }
    int64_t id;
    {
      absl::MutexLock lock(&mu);
      id = LeaseFresh() ? lease : 0;
    }
    if (id == 0) return;  // no lease yet (or etcd away): keep them
    while (!unsent.empty()) {
      const std::string key = absl::StrFormat("%s%020d", my_deltas, ++delta_seq);
      if (!Note(etcd->Put(key, unsent.front(), id))) return;
      unsent.pop_front();
      deltas_published.fetch_add(1);
    }
  }

  // LoadEvidence: a new leader resumes the judge from the saved evidence.
  void LoadEvidence() {
    absl::StatusOr<pb::RangeResponse> j = etcd->Range(judge_key);
    if (!Note(j)) return;
    bool loaded = false;
    if (j->kvs_size() == 1) {
      v1::FleetJudge judge;
      if (judge.ParseFromString(j->kvs(0).value()) && judge.evidence_chunks() > 0) {
        const std::string gen = evidence + judge.evidence_generation() + "/";
        absl::StatusOr<pb::RangeResponse> chunks = etcd->Range(gen, PrefixEnd(gen));
        if (!Note(chunks)) return;
        std::string bytes;
        for (const pb::KeyValue& kv : chunks->kvs()) bytes += kv.value();
        v1::JudgeEvidence e;
        if (chunks->kvs_size() == judge.evidence_chunks() && e.ParseFromString(bytes)) {
          absl::Status s = controller->RestoreEvidence(e);
          loaded = s.ok();
          if (!s.ok()) {
            std::fprintf(stderr, "understudy: fleet: saved evidence not resumed: %s\n",
                         s.ToString().c_str());
          }
        }
      }
    }
    // Nothing to resume: whatever this replica judged before (when it led
    // earlier) is stale; start from the state's stage, empty.
    if (!loaded) (void)controller->Restore(controller->State());
    absl::MutexLock lock(&mu);
    needs_evidence = false;
  }

  void MergeDelta(const std::string& bytes) {
    v1::JudgeEvidence d;
    if (!d.ParseFromString(bytes) || !controller->MergeEvidenceDelta(d).ok()) {
      deltas_discarded.fetch_add(1);
    } else {
      deltas_merged.fetch_add(1);
    }
  }
};

Fleet::Fleet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Fleet::~Fleet() { Stop(); }

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Create(FleetOptions options, const Clock& clock,
                                                     FleetLocal local) {
  if (options.lease_ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError("lease_ttl: must be at least 1s (etcd leases are in seconds)");
  }
  if (options.prefix.empty() || options.prefix[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("prefix: must start with '/', got \"", options.prefix, "\""));
  }
  auto impl = std::make_unique<Impl>(std::move(options), clock, std::move(local));
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd = EtcdClient::Create(impl->options.etcd);
  if (!etcd.ok()) return etcd.status();
  impl->etcd = *std::move(etcd);
  return std::unique_ptr<Fleet>(new Fleet(std::move(impl)));
}

void Fleet::Start(rollout::Controller& controller) {
  Impl& m = *impl_;
  m.controller = &controller;
  const int64_t restored = controller.State().version();  // the local store has these
  {
    absl::MutexLock lock(&m.mu);
    m.local_version = restored;
  }
  // Once, before traffic: the fleet's weight, if etcd answers.
  (void)m.Sync();
  m.KeepLease();
  m.Campaign();
  m.session_thread = std::thread([&m] { m.SessionLoop(); });
  m.watch_thread = std::thread([&m] { m.WatchLoop(); });
}

void Fleet::Stop() {
  Impl& m = *impl_;
  int64_t lease = 0;
  {
    absl::MutexLock lock(&m.mu);
    if (m.stopping) return;
    m.stopping = true;
    if (m.watch) m.watch->Cancel();
    lease = m.lease;
    m.lease = 0;
    m.StepDown("stopping");
  }
  if (m.session_thread.joinable()) m.session_thread.join();
  if (m.watch_thread.joinable()) m.watch_thread.join();
  if (lease != 0 && m.controller != nullptr) (void)m.etcd->LeaseRevoke(lease);
}

absl::Status Fleet::Commit(const v1::RolloutState& state, const v1::Decision& decision) {
  Impl& m = *impl_;
  int64_t expect_rev, leader_rev = 0;
  {
    absl::MutexLock lock(&m.mu);
    if (m.known_version >= 0 && decision.from().version() != m.known_version) {
      m.commits_refused.fetch_add(1);
      return absl::AbortedError(absl::StrCat(
          "fleet: the rollout moved on (state version ", m.known_version,
          "); refresh and try again"));
    }
    expect_rev = m.known_mod_rev;
    if (decision.actor() == "judge") {
      if (!m.is_leader || !m.LeaseFresh()) {
        m.commits_refused.fetch_add(1);
        return absl::AbortedError("fleet: this replica does not lead; the judge's decision is not its to make");
      }
      leader_rev = m.leader_rev;
    }
  }
  v1::FleetCommit c;
  *c.mutable_state() = state;
  *c.mutable_decision() = decision;
  pb::TxnRequest t;
  *t.add_compare() = CompareModRevision(m.state_key, expect_rev);
  if (leader_rev != 0) *t.add_compare() = CompareCreateRevision(m.leader_key, leader_rev);
  *t.add_success() = PutOp(m.state_key, c.SerializeAsString());
  *t.add_success() =
      PutOp(absl::StrFormat("%s%020d", m.decisions, state.version()), decision.SerializeAsString());
  absl::StatusOr<pb::TxnResponse> r = m.etcd->Txn(t);
  if (!m.Note(r)) {
    return absl::UnavailableError(
        absl::StrCat("fleet: etcd unreachable, the transition was not made: ", r.status().message()));
  }
  if (!r->succeeded()) {
    m.commits_refused.fetch_add(1);
    return absl::AbortedError(
        leader_rev != 0 ? "fleet: leadership or the rollout changed meanwhile; not committed"
                        : "fleet: another replica changed the rollout first; refresh and try again");
  }
  {
    absl::MutexLock lock(&m.mu);
    m.known_version = state.version();
    m.known_mod_rev = r->header().revision();
  }
  // The fleet has it; the local copy is for this replica's report.
  m.WriteLocal(state, decision);
  return absl::OkStatus();
}

bool Fleet::BeginTick() {
  Impl& m = *impl_;
  absl::MutexLock tick(&m.tick_mu);
  bool leading, load;
  {
    absl::MutexLock lock(&m.mu);
    leading = m.is_leader && m.LeaseFresh() && m.reachable;
    load = m.needs_evidence;
  }
  if (!leading) {
    m.Publish();
    return false;
  }
  if (load) {
    m.LoadEvidence();
    absl::MutexLock lock(&m.mu);
    if (m.needs_evidence) return false;  // not loaded (etcd away): judge next tick
  }
  // Own deltas first: kept while following, and this tick's.
  while (!m.unsent.empty()) {
    m.MergeDelta(m.unsent.front());
    m.unsent.pop_front();
  }
  v1::JudgeEvidence own = m.controller->TakeEvidenceDelta();
  if (!rollout::IsEmptyDelta(own)) m.MergeDelta(own.SerializeAsString());
  absl::StatusOr<pb::RangeResponse> r = m.etcd->Range(m.deltas, PrefixEnd(m.deltas));
  if (!m.Note(r)) return false;
  int merged = 0;
  for (const pb::KeyValue& kv : r->kvs()) {
    if (merged >= m.options.max_deltas_per_tick) break;
    if (std::find(m.merged_keys.begin(), m.merged_keys.end(), kv.key()) != m.merged_keys.end()) {
      continue;  // merged by an earlier tick whose save failed; still ours
    }
    m.MergeDelta(kv.value());
    m.merged_keys.push_back(kv.key());
    ++merged;
  }
  return true;
}

void Fleet::EndTick(const v1::HealthSnapshot& health) {
  Impl& m = *impl_;
  absl::MutexLock tick(&m.tick_mu);
  int64_t leader_rev;
  {
    absl::MutexLock lock(&m.mu);
    if (!m.is_leader) return;
    leader_rev = m.leader_rev;
  }
  const v1::JudgeEvidence e = m.controller->SaveEvidence();
  const std::string bytes = e.SerializeAsString();
  const std::string gen = absl::StrFormat("%020d-%08d", leader_rev, ++m.generation);
  const std::string gen_prefix = m.evidence + gen + "/";
  int chunks = 0;
  for (size_t off = 0; off < bytes.size() || chunks == 0; off += kChunkBytes) {
    const std::string key = absl::StrFormat("%s%06d", gen_prefix, chunks++);
    if (!m.Note(m.etcd->Put(key, bytes.substr(off, kChunkBytes)))) return;
    if (bytes.empty()) break;
  }
  v1::FleetJudge j;
  j.set_leader(m.options.member);
  j.set_time_unix_micros(absl::ToUnixMicros(m.clock.Now()));
  j.set_latency_threshold_ms(e.latency_threshold_ms());
  j.set_ttft_threshold_ms(e.ttft_threshold_ms());
  *j.mutable_health() = health;
  j.set_evidence_generation(gen);
  j.set_evidence_chunks(chunks);
  j.set_evidence_bytes(static_cast<int64_t>(bytes.size()));
  j.set_state_version(e.state_version());
  pb::TxnRequest t;
  *t.add_compare() = CompareCreateRevision(m.leader_key, leader_rev);
  *t.add_success() = PutOp(m.judge_key, j.SerializeAsString());
  for (const std::string& key : m.merged_keys) *t.add_success() = DeleteOp(key);
  // Older generations (this leader's and any before it).
  *t.add_success() = DeleteOp(m.evidence, m.evidence + gen);
  absl::StatusOr<pb::TxnResponse> r = m.etcd->Txn(t);
  if (!m.Note(r)) return;  // etcd away: the deltas stay, merged; saved next time
  if (r->succeeded()) {
    m.merged_keys.clear();
    return;
  }
  // Deposed: what this replica merged is not the fleet's; the next leader
  // merges the same deltas into the saved evidence.
  m.commits_refused.fetch_add(1);
  m.merged_keys.clear();
  (void)m.etcd->Delete(gen_prefix, PrefixEnd(gen_prefix));
  absl::MutexLock lock(&m.mu);
  m.StepDown("fenced out by a newer leader");
}

absl::Status Fleet::Refresh() {
  return impl_->Sync() != 0 ? absl::OkStatus()
                            : absl::UnavailableError("fleet: etcd unreachable");
}

v1::FleetStatus Fleet::Status() const {
  const Impl& m = *impl_;
  v1::FleetStatus s;
  {
    absl::MutexLock lock(&m.mu);
    s.set_member(m.options.member);
    s.set_leader(m.leader_name);
    s.set_is_leader(m.is_leader);
    s.set_etcd_reachable(m.reachable);
    if (m.last_contact != absl::InfinitePast()) {
      s.set_last_contact_unix_micros(absl::ToUnixMicros(m.last_contact));
    }
    s.set_error(m.error);
    s.set_members(m.members_count);
    s.set_judge_version_applied(m.known_version);
  }
  s.set_deltas_published(m.deltas_published.load());
  s.set_deltas_merged(m.deltas_merged.load());
  s.set_deltas_discarded(m.deltas_discarded.load());
  s.set_deltas_dropped(m.deltas_dropped.load());
  s.set_states_adopted(m.states_adopted.load());
  s.set_commits_refused(m.commits_refused.load());
  const EtcdTraffic t = m.etcd->Traffic();
  s.set_etcd_requests(t.requests);
  s.set_etcd_bytes_sent(t.bytes_sent);
  s.set_etcd_bytes_received(t.bytes_received);
  return s;
}

std::optional<v1::HealthSnapshot> Fleet::LeaderHealth() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->leader_health;
}

bool Fleet::IsLeader() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->is_leader;
}

EtcdTraffic Fleet::Traffic() const { return impl_->etcd->Traffic(); }

}  // namespace understudy::coordination
