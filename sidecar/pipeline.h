// sidecar/pipeline.h
// Where completed exchanges go. The ext_proc stream hands each exchange to an
// ExchangeSink and never waits: a full queue drops the exchange and counts it.
//
// Example (given storage::Store& store, v1::Exchange exchange, ExtProcStats& stats):
//   BoundedQueue<v1::Exchange> queue(4096, /*workers=*/1, [&](v1::Exchange e) {
//     storage::RecordBatch batch;
//     batch.Add(std::move(e));
//     (void)store.Write(std::move(batch));
//   });
//   if (!queue.TrySubmit(std::move(exchange))) stats.exchanges_dropped.Add();
//
// Thread safety: TrySubmit may be called from any thread.
#ifndef UNDERSTUDY_SIDECAR_PIPELINE_H_
#define UNDERSTUDY_SIDECAR_PIPELINE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::sidecar {

// ExchangeSink receives completed exchanges; Submit must not block.
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  // Submit takes the exchange; returns false if it was dropped (queue full).
  virtual bool Submit(understudy::v1::Exchange&& exchange) = 0;
};

// BoundedQueue is a fixed-capacity queue drained by worker threads that call
// `handler` for each item. TrySubmit never blocks. The destructor drains
// what is queued, then joins the workers.
template <typename T>
class BoundedQueue {
 public:
  BoundedQueue(size_t capacity, int workers, std::function<void(T)> handler)
      : capacity_(capacity), handler_(std::move(handler)) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~BoundedQueue() { Close(); }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // TrySubmit enqueues unless the queue is full or closed.
  bool TrySubmit(T item) {
    absl::MutexLock lock(&mu_);
    if (closed_ || items_.size() >= capacity_) return false;
    items_.push_back(std::move(item));
    return true;
  }

  size_t Size() const {
    absl::MutexLock lock(&mu_);
    return items_.size();
  }

  // WaitIdle blocks until the queue is empty and no handler is running
  // (tests and shutdown use it).
  void WaitIdle() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](BoundedQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
          return q->items_.empty() && q->busy_ == 0;
        },
        this));
  }

  // Close stops accepting, lets workers finish what is queued, joins them.
  void Close() {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      closed_ = true;
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Run() {
    while (true) {
      T item;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](BoundedQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
              return q->closed_ || !q->items_.empty();
            },
            this));
        if (items_.empty()) return;  // closed and drained
        item = std::move(items_.front());
        items_.pop_front();
        ++busy_;
      }
      handler_(std::move(item));
      absl::MutexLock lock(&mu_);
      --busy_;
    }
  }

  const size_t capacity_;
  const std::function<void(T)> handler_;
  mutable absl::Mutex mu_;
  std::deque<T> items_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_PIPELINE_H_
