// tests/telemetry/otlp_receiver.cc
#include "tests/telemetry/otlp_receiver.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace understudy::telemetry::testing {
namespace {

namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

class GrpcReceiver final : public OtlpReceiver, public otlp_collector::TraceService::Service {
 public:
  GrpcReceiver() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~GrpcReceiver() override { server_->Shutdown(std::chrono::system_clock::now()); }

  std::string endpoint() const override { return absl::StrCat("127.0.0.1:", port_); }

  grpc::Status Export(grpc::ServerContext* ctx,
                      const otlp_collector::ExportTraceServiceRequest* req,
                      otlp_collector::ExportTraceServiceResponse* resp) override {
    std::map<std::string, std::string> headers;
    for (const auto& [k, v] : ctx->client_metadata()) {
      headers[absl::AsciiStrToLower(std::string(k.data(), k.size()))] =
          std::string(v.data(), v.size());
    }
    switch (Record(*req, std::move(headers), "", resp)) {
      case Answer::kFail:
        return grpc::Status(grpc::StatusCode::INTERNAL, "told to fail");
      case Answer::kUnavailable:
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "told to be busy");
      case Answer::kOk:
        break;
    }
    return grpc::Status::OK;
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

class HttpReceiver final : public OtlpReceiver {
 public:
  HttpReceiver() {
    server_.Post("/v1/traces", [this](const httplib::Request& req, httplib::Response& res) {
      otlp_collector::ExportTraceServiceRequest parsed;
      if (!parsed.ParseFromString(req.body)) {
        res.status = 400;
        return;
      }
      std::map<std::string, std::string> headers;
      for (const auto& [k, v] : req.headers) headers[absl::AsciiStrToLower(k)] = v;
      otlp_collector::ExportTraceServiceResponse response;
      switch (Record(parsed, std::move(headers), req.get_header_value("Content-Type"),
                     &response)) {
        case Answer::kFail:
          res.status = 500;
          return;
        case Answer::kUnavailable:
          res.status = 503;
          return;
        case Answer::kOk:
          break;
      }
      res.set_content(response.SerializeAsString(), "application/x-protobuf");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    // The socket is listening once bound; connections wait in the backlog
    // until the thread starts accepting, so no readiness wait is needed.
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~HttpReceiver() override {
    // stop() before the accept loop runs would be lost.
    while (!server_.is_running()) std::this_thread::yield();
    server_.stop();
    thread_.join();
  }

  std::string endpoint() const override { return absl::StrCat("http://127.0.0.1:", port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<OtlpReceiver> OtlpReceiver::Start(OtlpProtocol protocol) {
  if (protocol == OtlpProtocol::kGrpc) return std::make_unique<GrpcReceiver>();
  return std::make_unique<HttpReceiver>();
}

OtlpReceiver::Answer OtlpReceiver::Record(
    const otlp_collector::ExportTraceServiceRequest& req,
    std::map<std::string, std::string> headers, std::string content_type,
    otlp_collector::ExportTraceServiceResponse* response) {
  absl::MutexLock lock(&mu_);
  ++requests_;
  last_headers_ = std::move(headers);
  last_content_type_ = std::move(content_type);
  if (failing_) return Answer::kFail;
  if (unavailable_ > 0) {
    --unavailable_;
    return Answer::kUnavailable;
  }
  for (const auto& rs : req.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& span : ss.spans()) spans_.push_back({span, rs.resource(), ss.scope()});
    }
  }
  if (rejected_ > 0) {
    response->mutable_partial_success()->set_rejected_spans(rejected_);
    response->mutable_partial_success()->set_error_message("test rejection");
  }
  return Answer::kOk;
}

std::vector<ReceivedSpan> OtlpReceiver::WaitForSpans(size_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return spans_.size() >= n; };
  mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  return spans_;
}

std::vector<ReceivedSpan> OtlpReceiver::Spans() const {
  absl::MutexLock lock(&mu_);
  return spans_;
}

const ReceivedSpan* OtlpReceiver::FindSpan(const std::vector<ReceivedSpan>& spans,
                                           const std::string& name) const {
  for (const ReceivedSpan& s : spans) {
    if (s.span.name() == name) return &s;
  }
  return nullptr;
}

int64_t OtlpReceiver::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

std::map<std::string, std::string> OtlpReceiver::last_headers() const {
  absl::MutexLock lock(&mu_);
  return last_headers_;
}

std::string OtlpReceiver::last_content_type() const {
  absl::MutexLock lock(&mu_);
  return last_content_type_;
}

void OtlpReceiver::SetRejectedSpans(int64_t rejected) {
  absl::MutexLock lock(&mu_);
  rejected_ = rejected;
}

void OtlpReceiver::SetFailing(bool failing) {
  absl::MutexLock lock(&mu_);
  failing_ = failing;
}

void OtlpReceiver::SetUnavailable(int n) {
  absl::MutexLock lock(&mu_);
  unavailable_ = n;
}

BlackHole::BlackHole() {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  listen(fd_, 16);
  socklen_t len = sizeof(addr);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

BlackHole::~BlackHole() {
  if (fd_ >= 0) close(fd_);
}

std::string HexToBytes(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

const opentelemetry::proto::common::v1::AnyValue* FindAttribute(
    const google::protobuf::RepeatedPtrField<opentelemetry::proto::common::v1::KeyValue>& attrs,
    const std::string& key) {
  for (const auto& kv : attrs) {
    if (kv.key() == key) return &kv.value();
  }
  return nullptr;
}

}  // namespace understudy::telemetry::testing
