#include "sidecar/ext_proc_service.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <deque>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/strings.h"

namespace understudy::sidecar {

namespace ep = envoy::service::ext_proc::v3;

// One reactor per Process stream. Reads are strictly sequential (one
// outstanding), so the StreamSession is only touched from OnReadDone;
// writes are queued because Envoy may send several STREAMED chunks before
// the first reply goes out, and gRPC allows one write in flight.
class ProcessReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ProcessReactor(ExtProcService& service, StreamRole role)
      : service_(service),
        session_(role, service.options_, service.router_, service.clock_, service.stats_) {
    service_.stats_.streams_started.Add();
    service_.stats_.streams_active.Add(1);
    StartRead(&in_);
  }

  // A stream whose role metadata is invalid is refused at once.
  static grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Refuse(
      grpc::Status status) {
    class Refusal final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
     public:
      explicit Refusal(grpc::Status s) { Finish(std::move(s)); }
      void OnDone() override { delete this; }
    };
    return new Refusal(std::move(status));
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-close or cancel: Envoy ends every stream with END_STREAM then
      // RST_STREAM (docs/extproc.md §3.1), so this is the normal end.
      EndInput(grpc::Status::OK);
      return;
    }
    ep::ProcessingRequest request;
    {
      grpc::ProtoBufferReader reader(&in_);
      if (!request.ParseFromZeroCopyStream(&reader)) {
        service_.stats_.messages_received.Add();
        service_.stats_.malformed_messages.Add();
        EndInput(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "malformed ProcessingRequest: protobuf parse failed"));
        return;
      }
    }
    in_.Clear();
    std::vector<ep::ProcessingResponse> replies;
    absl::Status status = session_.OnMessage(request, &replies);
    if (std::optional<understudy::v1::Exchange> e = session_.TakeCompletedExchange()) {
      SubmitExchange(std::move(*e));
    }
    for (const ep::ProcessingResponse& reply : replies) {
      if (!Enqueue(reply)) {
        // Envoy would wait for a reply until message_timeout; ending the
        // stream now lets failure_mode_allow pass the request at once.
        EndInput(grpc::Status(grpc::StatusCode::INTERNAL, "could not serialise a reply"));
        return;
      }
    }
    if (!status.ok()) {
      EndInput(grpc::Status(status.code() == absl::StatusCode::kFailedPrecondition
                                ? grpc::StatusCode::FAILED_PRECONDITION
                                : grpc::StatusCode::INVALID_ARGUMENT,
                            std::string(status.message())));
      return;
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      outbox_.pop_front();
      if (!ok) outbox_.clear();  // the stream is gone; nothing more can be sent
      else service_.stats_.replies_sent.Add();
    }
    Pump();
  }

  void OnCancel() override { service_.stats_.streams_cancelled.Add(); }

  void OnDone() override {
    service_.stats_.streams_active.Add(-1);
    service_.stats_.streams_finished.Add();
    delete this;
  }

 private:
  void SubmitExchange(understudy::v1::Exchange&& exchange) {
    if (service_.sink_.Submit(std::move(exchange))) {
      service_.stats_.exchanges_submitted.Add();
    } else {
      service_.stats_.exchanges_dropped.Add();
    }
  }

  // Enqueue queues a reply; false if it cannot be serialised (a reply over
  // protobuf's 2 GiB limit, say), counted as malformed.
  bool Enqueue(const ep::ProcessingResponse& reply) {
    grpc::ByteBuffer buffer;
    bool own = false;
    grpc::Status s = grpc::SerializationTraits<ep::ProcessingResponse>::Serialize(reply, &buffer, &own);
    if (!s.ok()) {
      service_.stats_.malformed_messages.Add();
      return false;
    }
    {
      absl::MutexLock lock(&mu_);
      outbox_.push_back(std::move(buffer));
    }
    Pump();
    return true;
  }

  // EndInput stops reading; the stream finishes once queued replies are out.
  void EndInput(grpc::Status status) {
    if (std::optional<understudy::v1::Exchange> e = session_.OnStreamEnd()) {
      SubmitExchange(std::move(*e));
    }
    {
      absl::MutexLock lock(&mu_);
      input_done_ = true;
      final_status_ = std::move(status);
    }
    Pump();
  }

  // Pump starts the next write, or finishes when input is done and the
  // outbox is empty. gRPC calls are made outside the lock.
  void Pump() {
    const grpc::ByteBuffer* next = nullptr;
    bool finish = false;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (writing_ || finished_) return;
      if (!outbox_.empty()) {
        writing_ = true;
        next = &outbox_.front();  // stable: deque front is not moved until popped
      } else if (input_done_) {
        finished_ = true;
        finish = true;
        status = final_status_;
      }
    }
    if (next != nullptr) StartWrite(next);
    if (finish) Finish(status);
  }

  ExtProcService& service_;
  StreamSession session_;
  grpc::ByteBuffer in_;

  absl::Mutex mu_;
  std::deque<grpc::ByteBuffer> outbox_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool input_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

ExtProcService::ExtProcService(SessionOptions options, const rollout::Router& router,
                               ExchangeSink& sink, const Clock& clock, ExtProcStats& stats)
    : options_(std::move(options)), router_(router), sink_(sink), clock_(clock), stats_(stats) {}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ExtProcService::Process(
    grpc::CallbackServerContext* context) {
  std::string_view role_value;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find(std::string(kRoleMetadata));
  if (it != metadata.end()) role_value = std::string_view(it->second.data(), it->second.size());
  absl::StatusOr<StreamRole> role = ParseStreamRole(role_value);
  if (!role.ok()) {
    stats_.streams_started.Add();
    stats_.unknown_messages.Add();
    return ProcessReactor::Refuse(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(role.status().message())));
  }
  return new ProcessReactor(*this, *role);
}

absl::StatusOr<std::unique_ptr<ExtProcServer>> ExtProcServer::Start(
    const ExtProcServerOptions& options, ExtProcService& service) {
  grpc::ServerBuilder builder;
  int port = 0;
  if (!options.listen.empty()) {
    builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  }
  if (!options.unix_socket.empty()) {
    builder.AddListeningPort(absl::StrCat("unix:", options.unix_socket),
                             grpc::InsecureServerCredentials());
  }
  if (options.listen.empty() && options.unix_socket.empty()) {
    return absl::InvalidArgumentError("extproc: neither listen nor unix_socket is set");
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_receive_message_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(options.max_concurrent_streams));
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || (!options.listen.empty() && port == 0)) {
    return absl::UnavailableError(absl::StrCat(
        "extproc: cannot listen on ",
        options.listen.empty() ? absl::StrCat("unix:", options.unix_socket) : options.listen,
        " (address in use or invalid?)"));
  }
  return std::unique_ptr<ExtProcServer>(new ExtProcServer(std::move(server), port));
}

ExtProcServer::~ExtProcServer() { Drain(absl::ZeroDuration()); }

void ExtProcServer::Drain(absl::Duration timeout) {
  if (drained_) return;
  drained_ = true;
  server_->Shutdown(absl::ToChronoTime(absl::Now() + timeout));
  server_->Wait();
}

void ExtProcServer::Wait() { server_->Wait(); }

}  // namespace understudy::sidecar
