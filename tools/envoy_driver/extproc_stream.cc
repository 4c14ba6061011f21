#include "tools/envoy_driver/extproc_stream.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>

namespace understudy::envoy_driver {

namespace ep = envoy::service::ext_proc::v3;

ExtProcStream::ExtProcStream(std::shared_ptr<grpc::Channel> channel,
                             const std::map<std::string, std::string>& metadata,
                             absl::Duration stream_deadline)
    : stub_(std::move(channel)) {
  for (const auto& [key, value] : metadata) context_.AddMetadata(key, value);
  context_.set_deadline(absl::ToChronoTime(absl::Now() + stream_deadline));
  stub_.PrepareBidiStreamingCall(&context_, kProcessMethod, grpc::StubOptions(), this);
  // Writes and the half-close are started from the caller's thread, outside
  // any reaction: the hold keeps the call (and OnDone) from finishing
  // under them until Close or Cancel releases it.
  AddHold();
  StartRead(&in_);
  StartCall();
}

ExtProcStream::~ExtProcStream() {
  bool finished;
  {
    absl::MutexLock lock(&mu_);
    finished = done_ && hold_released_;
  }
  if (!finished) Cancel();
}

void ExtProcStream::Send(const ep::ProcessingRequest& request) {
  grpc::ByteBuffer buffer;
  bool own = false;
  (void)grpc::SerializationTraits<ep::ProcessingRequest>::Serialize(request, &buffer, &own);
  SendBuffer(std::move(buffer));
}

void ExtProcStream::SendRaw(const std::string& bytes) {
  grpc::Slice slice(bytes);
  SendBuffer(grpc::ByteBuffer(&slice, 1));
}

void ExtProcStream::SendBuffer(grpc::ByteBuffer buffer) {
  {
    absl::MutexLock lock(&mu_);
    if (done_ || want_writes_done_) return;
    outbox_.push_back(std::move(buffer));
  }
  Pump();
}

// Pump starts the next write or the half-close. gRPC may run a reaction
// inline (at the end of the call that started it), so operations are
// started outside our lock.
void ExtProcStream::Pump() {
  const grpc::ByteBuffer* next = nullptr;
  bool writes_done = false;
  {
    absl::MutexLock lock(&mu_);
    if (writing_ || done_) return;
    if (!outbox_.empty()) {
      writing_ = true;
      next = &outbox_.front();  // stays put until OnWriteDone pops it
    } else if (want_writes_done_ && !writes_done_sent_) {
      writes_done_sent_ = true;
      writes_done = true;
    }
  }
  if (next != nullptr) StartWrite(next);
  if (writes_done) StartWritesDone();
}

void ExtProcStream::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    outbox_.pop_front();
    if (!ok) outbox_.clear();
  }
  Pump();
}

void ExtProcStream::OnWritesDoneDone(bool ok) {}

void ExtProcStream::OnReadDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    if (!ok) {
      read_done_ = true;
      return;
    }
    replies_.push_back(std::move(in_));
    in_.Clear();
  }
  StartRead(&in_);  // only this callback touches in_
}

void ExtProcStream::OnDone(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  done_ = true;
  read_done_ = true;
  status_ = status;
}

absl::StatusOr<ep::ProcessingResponse> ExtProcStream::Next(absl::Duration timeout) {
  grpc::ByteBuffer buffer;
  {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !replies_.empty() || read_done_;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
      return absl::DeadlineExceededError("no reply within the message timeout");
    }
    if (replies_.empty()) return absl::NotFoundError("stream ended without a reply");
    buffer = std::move(replies_.front());
    replies_.pop_front();
  }
  ep::ProcessingResponse response;
  grpc::ProtoBufferReader reader(&buffer);
  if (!response.ParseFromZeroCopyStream(&reader)) {
    return absl::DataLossError("reply is not a valid ProcessingResponse");
  }
  return response;
}

void ExtProcStream::ReleaseHold() {
  {
    absl::MutexLock lock(&mu_);
    if (hold_released_) return;
    hold_released_ = true;
  }
  RemoveHold();
}

grpc::Status ExtProcStream::Close(absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    want_writes_done_ = true;
  }
  Pump();  // the half-close now, or from OnWriteDone after the last write
  ReleaseHold();
  auto finished = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
  {
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&finished), timeout)) return status_;
  }
  return Cancel();
}

grpc::Status ExtProcStream::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    want_writes_done_ = true;  // nothing more is started from outside
  }
  context_.TryCancel();
  ReleaseHold();
  absl::MutexLock lock(&mu_);
  auto finished = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
  mu_.Await(absl::Condition(&finished));
  return status_;
}

bool ExtProcStream::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

grpc::Status ExtProcStream::end_status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

}  // namespace understudy::envoy_driver
