#include "coordination/etcd_client.h"

#include <fstream>
#include <sstream>
#include <type_traits>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/strings.h"

namespace understudy::coordination {

namespace pb = etcdserverpb;

std::string PrefixEnd(std::string prefix) {
  // The smallest key greater than every key starting with `prefix`: the
  // last byte that is not 0xff, plus one, with what follows it dropped.
  while (!prefix.empty()) {
    unsigned char last = static_cast<unsigned char>(prefix.back());
    if (last < 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // every key
}

namespace {

absl::Status FromGrpc(const grpc::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(s.error_code());
  return absl::Status(code, absl::StrCat("etcd ", Av(what), ": ", s.error_message()));
}

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(Av(key), ": cannot read \"", path, "\""));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A call failed because this endpoint could not be reached (try another).
bool Unreachable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// etcd says the auth token expired or is unknown (a restart forgets them).
bool BadToken(const grpc::Status& s) {
  return (s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
          s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) &&
         absl::StrContains(s.error_message(), "token");
}

}  // namespace

struct EtcdClient::Impl {
  EtcdOptions options;
  struct Endpoint {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Watch::Stub> watch;
    std::unique_ptr<pb::Auth::Stub> auth;
  };
  std::vector<Endpoint> endpoints;
  std::atomic<size_t> current{0};

  absl::Mutex token_mu;
  std::string token ABSL_GUARDED_BY(token_mu);

  std::atomic<int64_t> requests{0}, bytes_sent{0}, bytes_received{0};

  Endpoint& Current() { return endpoints[current.load() % endpoints.size()]; }
  void Rotate(size_t from) {
    size_t expected = from;
    current.compare_exchange_strong(expected, from + 1);
  }

  void Prepare(grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(options.request_timeout));
    absl::MutexLock lock(&token_mu);
    if (!token.empty()) ctx->AddMetadata("token", token);
  }

  absl::Status Authenticate() {
    if (options.username.empty()) return absl::OkStatus();
    pb::AuthenticateRequest req;
    req.set_name(options.username);
    req.set_password(options.password);
    pb::AuthenticateResponse resp;
    grpc::Status s;
    for (size_t tries = 0; tries < endpoints.size(); ++tries) {
      const size_t at = current.load();
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(options.request_timeout));
      s = endpoints[at % endpoints.size()].auth->Authenticate(&ctx, req, &resp);
      if (!Unreachable(s)) break;
      Rotate(at);
    }
    if (!s.ok()) return FromGrpc(s, "authenticate");
    absl::MutexLock lock(&token_mu);
    token = resp.token();
    return absl::OkStatus();
  }

  // Call runs one unary call on the current endpoint, moving on to the
  // next when it is unreachable (each endpoint once) and authenticating
  // again when the token is refused (once).
  template <typename Req, typename Resp, typename F>
  absl::StatusOr<Resp> Call(std::string_view what, const Req& req, F method) {
    bool need_token;
    {
      absl::MutexLock lock(&token_mu);
      need_token = !options.username.empty() && token.empty();
    }
    if (need_token) {
      if (absl::Status a = Authenticate(); !a.ok()) return a;
    }
    grpc::Status s;
    Resp resp;
    bool reauthenticated = false;
    for (size_t tries = 0; tries < endpoints.size() + 1; ++tries) {
      const size_t at = current.load();
      grpc::ClientContext ctx;
      Prepare(&ctx);
      requests.fetch_add(1);
      bytes_sent.fetch_add(static_cast<int64_t>(req.ByteSizeLong()));
      s = method(endpoints[at % endpoints.size()], &ctx, req, &resp);
      if (s.ok()) {
        if constexpr (std::is_base_of_v<google::protobuf::MessageLite, Resp>) {
          bytes_received.fetch_add(static_cast<int64_t>(resp.ByteSizeLong()));
        } else {
          bytes_received.fetch_add(static_cast<int64_t>(sizeof(Resp)));
        }
        return resp;
      }
      if (BadToken(s) && !reauthenticated) {
        reauthenticated = true;
        if (absl::Status a = Authenticate(); !a.ok()) return a;
        continue;
      }
      if (!Unreachable(s)) break;
      Rotate(at);
    }
    return FromGrpc(s, what);
  }
};

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::~EtcdClient() = default;

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(EtcdOptions options) {
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("endpoints: at least one host:port is required");
  }
  std::vector<std::string> targets;
  bool tls = options.tls || !options.ca_file.empty() || !options.cert_file.empty();
  for (size_t i = 0; i < options.endpoints.size(); ++i) {
    std::string e = options.endpoints[i];
    if (absl::StartsWith(e, "https://")) {
      tls = true;
      e = e.substr(8);
    } else if (absl::StartsWith(e, "http://")) {
      e = e.substr(7);
    }
    while (!e.empty() && e.back() == '/') e.pop_back();
    if (e.empty() || e.find(':') == std::string::npos || e.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("endpoints[", i, "]: want host:port, got \"",
                                                     options.endpoints[i], "\""));
    }
    targets.push_back(e);
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("tls: cert_file and key_file go together");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadFile(options.ca_file, "tls.ca_file");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!options.cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadFile(options.cert_file, "tls.cert_file");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile(options.key_file, "tls.key_file");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  grpc::ChannelArguments args;
  // Notice a dead etcd within seconds, and reconnect quickly.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 16 << 20);
  for (const std::string& t : targets) {
    Impl::Endpoint ep;
    ep.channel = grpc::CreateCustomChannel(t, creds, args);
    ep.kv = pb::KV::NewStub(ep.channel);
    ep.lease = pb::Lease::NewStub(ep.channel);
    ep.watch = pb::Watch::NewStub(ep.channel);
    ep.auth = pb::Auth::NewStub(ep.channel);
    impl->endpoints.push_back(std::move(ep));
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(impl)));
}

absl::StatusOr<pb::RangeResponse> EtcdClient::Range(const std::string& key,
                                                    const std::string& range_end) {
  pb::RangeRequest req;
  req.set_key(key);
  req.set_range_end(range_end);
  return impl_->Call<pb::RangeRequest, pb::RangeResponse>(
      "range", req, [](Impl::Endpoint& e, grpc::ClientContext* c, const auto& q, auto* r) {
        return e.kv->Range(c, q, r);
      });
}

absl::StatusOr<pb::PutResponse> EtcdClient::Put(const std::string& key, const std::string& value,
                                                int64_t lease) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  return impl_->Call<pb::PutRequest, pb::PutResponse>(
      "put", req, [](Impl::Endpoint& e, grpc::ClientContext* c, const auto& q, auto* r) {
        return e.kv->Put(c, q, r);
      });
}

absl::StatusOr<pb::DeleteRangeResponse> EtcdClient::Delete(const std::string& key,
                                                           const std::string& range_end) {
  pb::DeleteRangeRequest req;
  req.set_key(key);
  req.set_range_end(range_end);
  return impl_->Call<pb::DeleteRangeRequest, pb::DeleteRangeResponse>(
      "delete", req, [](Impl::Endpoint& e, grpc::ClientContext* c, const auto& q, auto* r) {
        return e.kv->DeleteRange(c, q, r);
      });
}

absl::StatusOr<pb::TxnResponse> EtcdClient::Txn(const pb::TxnRequest& req) {
  return impl_->Call<pb::TxnRequest, pb::TxnResponse>(
      "txn", req, [](Impl::Endpoint& e, grpc::ClientContext* c, const auto& q, auto* r) {
        return e.kv->Txn(c, q, r);
      });
}

absl::StatusOr<int64_t> EtcdClient::LeaseGrant(absl::Duration ttl) {
  pb::LeaseGrantRequest req;
  req.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(ttl)));
  absl::StatusOr<pb::LeaseGrantResponse> r = impl_->Call<pb::LeaseGrantRequest, pb::LeaseGrantResponse>(
      "lease grant", req, [](Impl::Endpoint& e, grpc::ClientContext* c, const auto& q, auto* r) {
        return e.lease->LeaseGrant(c, q, r);
      });
  if (!r.ok()) return r.status();
  if (!r->error().empty()) return absl::UnavailableError(absl::StrCat("etcd lease grant: ", r->error()));
  return r->id();
}

absl::StatusOr<int64_t> EtcdClient::LeaseKeepAlive(int64_t lease) {
  // One request on a short-lived stream: renewals are seconds apart, and a
  // stream that outlives an etcd restart would need the same care anyway.
  pb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  return impl_->Call<pb::LeaseKeepAliveRequest, int64_t>(
      "lease keepalive", req,
      [](Impl::Endpoint& e, grpc::ClientContext* c, const pb::LeaseKeepAliveRequest& q,
         int64_t* ttl) -> grpc::Status {
        auto stream = e.lease->LeaseKeepAlive(c);
        pb::LeaseKeepAliveResponse resp;
        if (!stream->Write(q) || !stream->Read(&resp)) {
          stream->WritesDone();
          grpc::Status s = stream->Finish();
          return s.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keepalive stream ended")
                        : s;
        }
        stream->WritesDone();
        c->TryCancel();  // do not wait for the server to close its side
        (void)stream->Finish();
        if (resp.ttl() <= 0) {
          return grpc::Status(grpc::StatusCode::NOT_FOUND, "lease expired");
        }
        *ttl = resp.ttl();
        return grpc::Status::OK;
      });
}

absl::Status EtcdClient::LeaseRevoke(int64_t lease) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease);
  return impl_
      ->Call<pb::LeaseRevokeRequest, pb::LeaseRevokeResponse>(
          "lease revoke", req,
          [](Impl::Endpoint& e, grpc::ClientContext* c, const auto& q, auto* r) {
            return e.lease->LeaseRevoke(c, q, r);
          })
      .status();
}

namespace {

class GrpcWatch final : public EtcdWatch {
 public:
  GrpcWatch(pb::Watch::Stub* stub, const std::string& token, pb::WatchRequest create,
            std::atomic<int64_t>* received)
      : received_(received) {
    if (!token.empty()) ctx_.AddMetadata("token", token);
    stream_ = stub->Watch(&ctx_);
    if (!stream_->Write(create)) {
      failed_ = true;
    }
  }
  ~GrpcWatch() override {
    Cancel();
    (void)status();
  }
  bool Next(pb::WatchResponse* r) override {
    if (failed_ || finished_) return false;
    if (!stream_->Read(r)) return false;
    received_->fetch_add(static_cast<int64_t>(r->ByteSizeLong()));
    if (r->canceled() || r->compact_revision() > 0) {
      cancel_reason_ = r->compact_revision() > 0
                           ? absl::StrCat("compacted at revision ", r->compact_revision())
                           : r->cancel_reason();
      compacted_ = r->compact_revision() > 0;
      return false;
    }
    return true;
  }
  void Cancel() override { ctx_.TryCancel(); }
  absl::Status status() override {
    if (!finished_) {
      finished_ = true;
      final_ = stream_->Finish();
    }
    if (compacted_) return absl::OutOfRangeError(absl::StrCat("etcd watch: ", cancel_reason_));
    if (!cancel_reason_.empty()) return absl::AbortedError(absl::StrCat("etcd watch: ", cancel_reason_));
    return FromGrpc(final_, "watch");
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream_;
  std::atomic<int64_t>* received_;
  bool failed_ = false;
  bool finished_ = false;
  bool compacted_ = false;
  std::string cancel_reason_;
  grpc::Status final_;
};

}  // namespace

std::unique_ptr<EtcdWatch> EtcdClient::Watch(const std::string& key, const std::string& range_end,
                                             int64_t start_revision) {
  if (!impl_->options.username.empty()) {
    bool need;
    {
      absl::MutexLock lock(&impl_->token_mu);
      need = impl_->token.empty();
    }
    if (need) (void)impl_->Authenticate();
  }
  pb::WatchRequest req;
  pb::WatchCreateRequest* c = req.mutable_create_request();
  c->set_key(key);
  c->set_range_end(range_end);
  c->set_start_revision(start_revision);
  c->set_progress_notify(true);
  std::string token;
  {
    absl::MutexLock lock(&impl_->token_mu);
    token = impl_->token;
  }
  impl_->requests.fetch_add(1);
  impl_->bytes_sent.fetch_add(static_cast<int64_t>(req.ByteSizeLong()));
  return std::make_unique<GrpcWatch>(impl_->Current().watch.get(), token, std::move(req),
                                     &impl_->bytes_received);
}

EtcdTraffic EtcdClient::Traffic() const {
  return {impl_->requests.load(), impl_->bytes_sent.load(), impl_->bytes_received.load()};
}

pb::Compare CompareCreateRevision(const std::string& key, int64_t revision) {
  pb::Compare c;
  c.set_result(pb::Compare::EQUAL);
  c.set_target(pb::Compare::CREATE);
  c.set_key(key);
  c.set_create_revision(revision);
  return c;
}

pb::Compare CompareModRevision(const std::string& key, int64_t revision) {
  pb::Compare c;
  c.set_result(pb::Compare::EQUAL);
  c.set_target(pb::Compare::MOD);
  c.set_key(key);
  c.set_mod_revision(revision);
  return c;
}

pb::RequestOp PutOp(const std::string& key, const std::string& value, int64_t lease) {
  pb::RequestOp op;
  pb::PutRequest* p = op.mutable_request_put();
  p->set_key(key);
  p->set_value(value);
  p->set_lease(lease);
  return op;
}

pb::RequestOp DeleteOp(const std::string& key, const std::string& range_end) {
  pb::RequestOp op;
  pb::DeleteRangeRequest* d = op.mutable_request_delete_range();
  d->set_key(key);
  d->set_range_end(range_end);
  return op;
}

pb::RequestOp RangeOp(const std::string& key, const std::string& range_end) {
  pb::RequestOp op;
  pb::RangeRequest* r = op.mutable_request_range();
  r->set_key(key);
  r->set_range_end(range_end);
  return op;
}

}  // namespace understudy::coordination
