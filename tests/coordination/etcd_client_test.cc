// The etcd client against a real etcd: keys, compare-and-swap, leases,
// watches, and an etcd that goes away and comes back.
#include "coordination/etcd_client.h"

#include <gtest/gtest.h>

#include <memory>

#include "tests/common/test_util.h"
#include "tests/support/etcd_process.h"

namespace understudy::coordination {
namespace {

using ::understudy::testing::EtcdProcess;
using ::understudy::testing::StatusIs;

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> e = EtcdProcess::Start();
    ASSERT_OK(e);
    etcd_ = *std::move(e);
    EtcdOptions o;
    o.endpoints = {etcd_->endpoint()};
    o.request_timeout = absl::Seconds(2);
    absl::StatusOr<std::unique_ptr<EtcdClient>> c = EtcdClient::Create(o);
    ASSERT_OK(c);
    client_ = *std::move(c);
  }
  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST(EtcdClientOptionsTest, BadOptionsNameTheKey) {
  EXPECT_THAT(EtcdClient::Create(EtcdOptions{}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "endpoints"));
  EtcdOptions o;
  o.endpoints = {"127.0.0.1:2379", "no-port"};
  EXPECT_THAT(EtcdClient::Create(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "endpoints[1]"));
  o.endpoints = {"https://127.0.0.1:2379"};
  o.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(EtcdClient::Create(o).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "tls.ca_file"));
  EXPECT_EQ(PrefixEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
}

TEST_F(EtcdClientTest, CompareAndSwapLetsOneWriterWin) {
  absl::StatusOr<etcdserverpb::PutResponse> put = client_->Put("/t/state", "v1");
  ASSERT_OK(put);
  const int64_t rev = put->header().revision();
  auto cas = [&](const std::string& value, int64_t expect) {
    etcdserverpb::TxnRequest t;
    *t.add_compare() = CompareModRevision("/t/state", expect);
    *t.add_success() = PutOp("/t/state", value);
    absl::StatusOr<etcdserverpb::TxnResponse> r = client_->Txn(t);
    EXPECT_OK(r);
    return r.ok() && r->succeeded();
  };
  EXPECT_TRUE(cas("v2", rev));
  EXPECT_FALSE(cas("v3", rev)) << "a writer that read the old revision loses";
  absl::StatusOr<etcdserverpb::RangeResponse> got = client_->Range("/t/state");
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "v2");
}

TEST_F(EtcdClientTest, KeysUnderALeaseGoWithItAndTheWatchSeesIt) {
  absl::StatusOr<int64_t> lease = client_->LeaseGrant(absl::Seconds(5));
  ASSERT_OK(lease);
  absl::StatusOr<etcdserverpb::PutResponse> put = client_->Put("/t/members/a", "a", *lease);
  ASSERT_OK(put);
  absl::StatusOr<int64_t> ttl = client_->LeaseKeepAlive(*lease);
  ASSERT_OK(ttl);
  EXPECT_GT(*ttl, 0);
  std::unique_ptr<EtcdWatch> w =
      client_->Watch("/t/", PrefixEnd("/t/"), put->header().revision() + 1);
  ASSERT_OK(client_->LeaseRevoke(*lease));
  etcdserverpb::WatchResponse r;
  bool deleted = false;
  while (!deleted && w->Next(&r)) {
    for (const auto& e : r.events()) {
      deleted = deleted || (e.type() == etcdserverpb::Event::DELETE && e.kv().key() == "/t/members/a");
    }
  }
  EXPECT_TRUE(deleted);
  EXPECT_THAT(client_->LeaseKeepAlive(*lease).status(),
              StatusIs(absl::StatusCode::kNotFound, "expired"));
  absl::StatusOr<etcdserverpb::RangeResponse> got = client_->Range("/t/members/a");
  ASSERT_OK(got);
  EXPECT_EQ(got->kvs_size(), 0);
}

TEST_F(EtcdClientTest, UnreachableIsUnavailableAndItRecovers) {
  ASSERT_OK(client_->Put("/t/k", "1").status());
  etcd_->Stop();
  EXPECT_THAT(client_->Range("/t/k").status(), StatusIs(absl::StatusCode::kUnavailable, "etcd"));
  ASSERT_OK(etcd_->Restart());
  absl::StatusOr<etcdserverpb::RangeResponse> got;
  for (int i = 0; i < 50; ++i) {
    got = client_->Range("/t/k");
    if (got.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs_size(), 1) << "the data survived the restart";
  EXPECT_EQ(got->kvs(0).value(), "1");
}

}  // namespace
}  // namespace understudy::coordination
