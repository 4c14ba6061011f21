// tools/envoy_driver/extproc_stream.h
// One client-side ext_proc Process stream, as Envoy's gRPC client opens it:
// initial metadata, messages written in order, replies read as they come,
// per-message reply deadline (message_timeout), END_STREAM, and the RST
// Envoy sends at the end. Raw bytes can be sent too (malformed-input tests).
//
// Example (given std::shared_ptr<grpc::Channel> channel,
//   const envoy::service::ext_proc::v3::ProcessingRequest& request):
//   ExtProcStream stream(channel, {{"x-understudy-role", "route"}});
//   stream.Send(request);
//   absl::StatusOr<envoy::service::ext_proc::v3::ProcessingResponse> reply =
//       stream.Next(absl::Milliseconds(200));
//   grpc::Status end = stream.Close();
//
// Thread safety: one thread drives a stream; gRPC callbacks are internal.
#ifndef UNDERSTUDY_TOOLS_ENVOY_DRIVER_EXTPROC_STREAM_H_
#define UNDERSTUDY_TOOLS_ENVOY_DRIVER_EXTPROC_STREAM_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "envoy/service/ext_proc/v3/external_processor.pb.h"

namespace understudy::envoy_driver {

inline constexpr char kProcessMethod[] = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

class ExtProcStream final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ExtProcStream(std::shared_ptr<grpc::Channel> channel,
                const std::map<std::string, std::string>& metadata,
                absl::Duration stream_deadline = absl::Seconds(30));
  ~ExtProcStream() override;

  void Send(const envoy::service::ext_proc::v3::ProcessingRequest& request);
  void SendRaw(const std::string& bytes);

  // Next waits up to `timeout` for the next reply. DeadlineExceeded on
  // timeout (Envoy's message_timeout), NotFound when the stream ended
  // without one (then `end_status()` tells how), DataLoss if the reply does
  // not parse.
  absl::StatusOr<envoy::service::ext_proc::v3::ProcessingResponse> Next(absl::Duration timeout);

  // Close half-closes (END_STREAM) once queued writes are out and waits for
  // the server to finish; returns the final status. Replies that arrive in
  // between stay readable with Next.
  grpc::Status Close(absl::Duration timeout = absl::Seconds(10));
  // Cancel resets the stream (Envoy's RST_STREAM) and waits for the end.
  grpc::Status Cancel();

  bool done() const;
  grpc::Status end_status() const;

  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  void SendBuffer(grpc::ByteBuffer buffer);
  void Pump();
  // ReleaseHold removes the constructor's hold once: no more operations are
  // started from outside a reaction.
  void ReleaseHold();

  grpc::ClientContext context_;
  grpc::GenericStub stub_;
  grpc::ByteBuffer in_;

  mutable absl::Mutex mu_;
  std::deque<grpc::ByteBuffer> outbox_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool want_writes_done_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;  // AddHold in the constructor
  bool writes_done_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<grpc::ByteBuffer> replies_ ABSL_GUARDED_BY(mu_);
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace understudy::envoy_driver

#endif  // UNDERSTUDY_TOOLS_ENVOY_DRIVER_EXTPROC_STREAM_H_
