// sidecar/ext_proc_service.h
// The Envoy External Processing (ext_proc v3) gRPC service: one bidirectional
// Process stream per HTTP request. Route streams get the arm as a header
// mutation (`x-understudy-arm`, raw_value, clear_route_cache); observe and
// full streams are assembled into exchanges and handed to an ExchangeSink
// without waiting. See docs/extproc.md for the protocol rules honoured.
//
// Example (given const SessionOptions& session_options, const rollout::Router& router,
//   ExchangeSink& sink, ExtProcStats& stats, const ExtProcServerOptions& server_options):
//   ExtProcService service(session_options, router, sink, RealClock::Default(), stats);
//   ASSIGN_OR_RETURN(std::unique_ptr<ExtProcServer> server,
//                    ExtProcServer::Start(server_options, service));
//   int port = server->port();
//   server->Drain(absl::Seconds(10));   // on SIGTERM
//
// Thread safety: the service is shared by all streams; each stream's state
// is its own. Router, sink, clock and stats must outlive the server.
#ifndef UNDERSTUDY_SIDECAR_EXT_PROC_SERVICE_H_
#define UNDERSTUDY_SIDECAR_EXT_PROC_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "rollout/router.h"
#include "sidecar/pipeline.h"
#include "sidecar/stats.h"
#include "sidecar/stream_session.h"

namespace understudy::sidecar {

// ExtProcService parses requests itself (raw ByteBuffer method) so that a
// malformed protobuf is counted and answered with INVALID_ARGUMENT instead
// of vanishing inside gRPC's deserializer.
class ExtProcService final
    : public envoy::service::ext_proc::v3::ExternalProcessor::WithRawCallbackMethod_Process<
          envoy::service::ext_proc::v3::ExternalProcessor::Service> {
 public:
  ExtProcService(SessionOptions options, const rollout::Router& router, ExchangeSink& sink,
                 const Clock& clock, ExtProcStats& stats);

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Process(
      grpc::CallbackServerContext* context) override;

  ExtProcStats& stats() { return stats_; }

 private:
  friend class ProcessReactor;
  const SessionOptions options_;
  const rollout::Router& router_;
  ExchangeSink& sink_;
  const Clock& clock_;
  ExtProcStats& stats_;
};

struct ExtProcServerOptions {
  // "host:port" (port 0 picks one); empty to listen on the socket only.
  std::string listen = "0.0.0.0:50051";
  // Optional Unix socket path (Envoy can use one: +25% streams/s here).
  std::string unix_socket;
  int64_t max_receive_message_bytes = 64 << 20;
  int64_t max_concurrent_streams = 100000;
};

class ExtProcServer {
 public:
  // Start builds and starts the gRPC server. Unavailable when a listener
  // cannot bind (the address is in the message).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ExtProcServer>> Start(
      const ExtProcServerOptions& options, ExtProcService& service);
  ~ExtProcServer();

  // port is the bound TCP port (0 when only a Unix socket is used).
  int port() const { return port_; }
  // Drain stops accepting new streams and waits up to `timeout` for open
  // streams to finish, then cancels the rest. Idempotent.
  void Drain(absl::Duration timeout);
  // Wait blocks until the server has shut down.
  void Wait();

 private:
  ExtProcServer(std::unique_ptr<grpc::Server> server, int port)
      : server_(std::move(server)), port_(port) {}
  std::unique_ptr<grpc::Server> server_;
  int port_;
  bool drained_ = false;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_EXT_PROC_SERVICE_H_
