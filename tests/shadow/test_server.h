// tests/shadow/test_server.h
// An in-test OpenAI-shaped HTTP upstream on 127.0.0.1:0 that records what
// it receives. Routes (all POST):
//   /v1/chat/completions  JSON answer "hello" (model echoed from the request),
//                         or an SSE stream "Hello world" when "stream":true
//   /hang                 blocks until Release() (or the server stops)
//   /error                500 with an OpenAI error body
//   /garbage              200 with a body that is not an answer
//   /broken-stream        SSE that ends without [DONE]
#ifndef UNDERSTUDY_TESTS_SHADOW_TEST_SERVER_H_
#define UNDERSTUDY_TESTS_SHADOW_TEST_SERVER_H_

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace understudy::shadow::testing {

struct ReceivedRequest {
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case keys
  std::string body;

  // Header returns the first value of `name`, or "" (and *found = false).
  std::string Header(std::string_view name, bool* found = nullptr) const;
};

class TestServer {
 public:
  TestServer();
  ~TestServer();

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<ReceivedRequest> Requests() const;
  // WaitForHanging blocks until `n` requests are blocked in /hang.
  bool WaitForHanging(int n, absl::Duration timeout) const;
  // Release unblocks every /hang request (they answer 503).
  void Release();

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  std::vector<ReceivedRequest> requests_ ABSL_GUARDED_BY(mu_);
  int hanging_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace understudy::shadow::testing

#endif  // UNDERSTUDY_TESTS_SHADOW_TEST_SERVER_H_
