// tests/support/subprocess.h
// Real processes for end-to-end tests: start a binary, read the port it
// announces on stdout, send it signals (SIGKILL included), wait for it.
//
// Example:
//   auto fake = Subprocess::Start({FakeModelPath(), "--port", "0", "--seed", "1"});
//   ASSERT_OK(fake);
//   absl::StatusOr<int> port = (*fake)->WaitForPort("listening on 127.0.0.1:", absl::Seconds(10));
//   ...
//   (*fake)->Kill(SIGKILL);
//
// Output: stdout and stderr go to files in a temporary directory, so a
// chatty child never blocks on a full pipe; Output()/Errors() read them.
// The destructor kills (SIGKILL) and reaps a child still running.
//
// Thread safety: none; one test thread drives a Subprocess.
#ifndef UNDERSTUDY_TESTS_SUPPORT_SUBPROCESS_H_
#define UNDERSTUDY_TESTS_SUPPORT_SUBPROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace understudy::testing {

class Subprocess {
 public:
  // Start runs argv[0] (a path) with the given arguments and extra
  // environment variables (added to the parent's environment).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // WaitForPort waits until stdout contains `prefix` followed by a number
  // and returns the number; DeadlineExceeded (with the output so far) or
  // Unavailable if the process exits first.
  [[nodiscard]] absl::StatusOr<int> WaitForPort(const std::string& prefix, absl::Duration timeout);
  // WaitForOutput waits until stdout or stderr contains `text`.
  [[nodiscard]] bool WaitForOutput(const std::string& text, absl::Duration timeout);

  // Kill sends `signal`; Wait reaps the child and returns its exit status
  // (128 + signal when killed), or nullopt on timeout.
  void Kill(int signal);
  std::optional<int> Wait(absl::Duration timeout);
  bool running();

  std::string Output() const;  // stdout so far
  std::string Errors() const;  // stderr so far
  pid_t pid() const { return pid_; }

 private:
  Subprocess() = default;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::string dir_;
};

// RunCommand runs a command to completion and returns its exit status and
// stdout (stderr is appended to `errors` when given).
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
[[nodiscard]] absl::StatusOr<CommandResult> RunCommand(
    std::vector<std::string> argv, absl::Duration timeout = absl::Seconds(60),
    std::map<std::string, std::string> env = {});

// BuildDir is the CMake binary dir the tests were built in (from the
// UNDERSTUDY_BUILD_DIR compile definition).
std::string BuildDir();
std::string SourceDir();

// MakeTempDir creates a fresh directory under TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_SUPPORT_SUBPROCESS_H_
