// coordination/etcd_client.h
// A small client for etcd's v3 API over gRPC (proto/etcd/v3/etcd.proto):
// key ranges, puts, deletes, transactions, leases and watches — what fleet
// mode needs (coordination/fleet.h, docs/fleet.md). Synchronous calls with
// a deadline each; several endpoints are tried in turn (the next one after
// a call finds one unreachable); TLS and username/password auth as etcd
// offers them.
//
// Example (given an etcd on 127.0.0.1:2379):
//   EtcdOptions o;
//   o.endpoints = {"127.0.0.1:2379"};
//   ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> etcd, EtcdClient::Create(o));
//   ASSIGN_OR_RETURN(int64_t lease, etcd->LeaseGrant(absl::Seconds(10)));
//   ASSIGN_OR_RETURN(auto put, etcd->Put("/understudy/a", "value", lease));
//   ASSIGN_OR_RETURN(auto got, etcd->Range("/understudy/", PrefixEnd("/understudy/")));
//   std::unique_ptr<EtcdWatch> w = etcd->Watch("/understudy/", PrefixEnd("/understudy/"),
//                                              put.header().revision() + 1);
//   etcdserverpb::WatchResponse r;
//   while (w->Next(&r)) { ... }   // another thread may call w->Cancel()
//
// Thread safety: every method may be called concurrently.
#ifndef UNDERSTUDY_COORDINATION_ETCD_CLIENT_H_
#define UNDERSTUDY_COORDINATION_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "etcd/v3/etcd.grpc.pb.h"

namespace understudy::coordination {

struct EtcdOptions {
  // host:port, optionally with an http:// or https:// scheme (https → TLS).
  std::vector<std::string> endpoints;
  // TLS: on when any of these is set or an endpoint says https://. The CA
  // bundle verifies the server; cert and key authenticate this client.
  bool tls = false;
  std::string ca_file, cert_file, key_file;
  // Auth (etcd's users and roles): a token from Authenticate is sent with
  // every call and renewed when etcd says it is no longer valid.
  std::string username, password;
  absl::Duration request_timeout = absl::Seconds(3);
};

// PrefixEnd is the range_end that makes [prefix, PrefixEnd(prefix)) every
// key starting with `prefix`.
std::string PrefixEnd(std::string prefix);

// Byte and call counts, for the bench and /metrics.
struct EtcdTraffic {
  int64_t requests = 0;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
};

class EtcdWatch {
 public:
  virtual ~EtcdWatch() = default;
  // Next blocks for the next response; false once the stream has ended
  // (cancelled, etcd gone, or the watch refused: see status()).
  virtual bool Next(etcdserverpb::WatchResponse* response) = 0;
  // Cancel ends the stream from any thread; Next then returns false.
  virtual void Cancel() = 0;
  // Why the stream ended (after Next returned false).
  virtual absl::Status status() = 0;
};

class EtcdClient {
 public:
  // Create validates the options (endpoints, readable TLS files) and makes
  // the channels; it does not wait for etcd (calls fail Unavailable while
  // it is unreachable). InvalidArgument names the bad option.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(EtcdOptions options);
  ~EtcdClient();

  absl::StatusOr<etcdserverpb::RangeResponse> Range(const std::string& key,
                                                    const std::string& range_end = "");
  absl::StatusOr<etcdserverpb::PutResponse> Put(const std::string& key, const std::string& value,
                                                int64_t lease = 0);
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> Delete(const std::string& key,
                                                           const std::string& range_end = "");
  absl::StatusOr<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);
  // LeaseGrant returns a new lease's id.
  absl::StatusOr<int64_t> LeaseGrant(absl::Duration ttl);
  // LeaseKeepAlive renews a lease once; returns its new TTL in seconds
  // (NotFound when the lease has expired).
  absl::StatusOr<int64_t> LeaseKeepAlive(int64_t lease);
  absl::Status LeaseRevoke(int64_t lease);
  // Watch starts a watch of [key, range_end) from `start_revision`
  // (inclusive; 0 = now). Events arrive through the returned stream.
  std::unique_ptr<EtcdWatch> Watch(const std::string& key, const std::string& range_end,
                                   int64_t start_revision);

  EtcdTraffic Traffic() const;

 private:
  struct Impl;
  explicit EtcdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Txn building blocks.
etcdserverpb::Compare CompareCreateRevision(const std::string& key, int64_t revision);
etcdserverpb::Compare CompareModRevision(const std::string& key, int64_t revision);
etcdserverpb::RequestOp PutOp(const std::string& key, const std::string& value, int64_t lease = 0);
etcdserverpb::RequestOp DeleteOp(const std::string& key, const std::string& range_end = "");
etcdserverpb::RequestOp RangeOp(const std::string& key, const std::string& range_end = "");

}  // namespace understudy::coordination

#endif  // UNDERSTUDY_COORDINATION_ETCD_CLIENT_H_
