// tests/support/test_upstream.h
// A minimal real HTTP upstream on 127.0.0.1:0 for driver and service tests:
// answers POST /v1/chat/completions with an OpenAI-shaped JSON body naming
// itself, or — when the request body contains "stream": true — with an SSE
// stream sent in several chunks. The richer fake model lives in
// examples/fake-model.
#ifndef UNDERSTUDY_TESTS_SUPPORT_TEST_UPSTREAM_H_
#define UNDERSTUDY_TESTS_SUPPORT_TEST_UPSTREAM_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}  // namespace httplib

namespace understudy::envoy_driver {

class TestUpstream {
 public:
  explicit TestUpstream(std::string name);
  ~TestUpstream();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }
  // The JSON answer's content for a non-streamed request.
  std::string Answer() const { return "hello from " + name_; }

 private:
  std::string name_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
};

}  // namespace understudy::envoy_driver

#endif  // UNDERSTUDY_TESTS_SUPPORT_TEST_UPSTREAM_H_
