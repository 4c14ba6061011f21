#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace understudy::testing {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", prefix, "XXXXXX");
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  const char* made = mkdtemp(buf.data());
  return made != nullptr ? std::string(made) : std::string();
}

std::string BuildDir() { return UNDERSTUDY_BUILD_DIR; }
std::string SourceDir() { return UNDERSTUDY_SOURCE_DIR; }

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    std::vector<std::string> argv, std::map<std::string, std::string> env) {
  std::unique_ptr<Subprocess> p(new Subprocess());
  p->dir_ = MakeTempDir("understudy-proc-");
  if (p->dir_.empty()) return absl::InternalError("mkdtemp failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, (p->dir_ + "/stdout").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, (p->dir_ + "/stderr").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (env.count(key) == 0) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
  std::vector<char*> cargv, cenv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (std::string& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  // Children start with no blocked signals, whatever the test runner did.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  const int rc = posix_spawn(&p->pid_, cargv[0], &actions, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
  }
  return p;
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_status_.has_value()) {
    Kill(SIGKILL);
    Wait(absl::Seconds(10));
  }
  if (!dir_.empty()) {
    std::remove((dir_ + "/stdout").c_str());
    std::remove((dir_ + "/stderr").c_str());
    rmdir(dir_.c_str());
  }
}

absl::StatusOr<int> Subprocess::WaitForPort(const std::string& prefix, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string out = Output();
    size_t at = out.find(prefix);
    if (at != std::string::npos) {
      size_t i = at + prefix.size();
      int port = 0;
      bool digits = false;
      while (i < out.size() && out[i] >= '0' && out[i] <= '9') {
        port = port * 10 + (out[i++] - '0');
        digits = true;
      }
      if (digits && i < out.size()) return port;  // the whole number is there
    }
    if (!running()) {
      return absl::UnavailableError(absl::StrCat("process exited (status ", exit_status_.value_or(-1),
                                                 ") before announcing a port; stderr: ", Errors()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no \"", prefix, "<port>\" on stdout; stdout: ", Output(), " stderr: ", Errors()));
}

bool Subprocess::WaitForOutput(const std::string& text, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (Output().find(text) != std::string::npos || Errors().find(text) != std::string::npos) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

void Subprocess::Kill(int signal) {
  if (pid_ > 0 && !exit_status_.has_value()) ::kill(pid_, signal);
}

bool Subprocess::running() {
  if (exit_status_.has_value()) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return exit_status_;
}

std::string Subprocess::Output() const { return ReadFile(dir_ + "/stdout"); }
std::string Subprocess::Errors() const { return ReadFile(dir_ + "/stderr"); }

absl::StatusOr<CommandResult> RunCommand(std::vector<std::string> argv, absl::Duration timeout,
                                         std::map<std::string, std::string> env) {
  absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Start(std::move(argv), std::move(env));
  if (!p.ok()) return p.status();
  std::optional<int> code = (*p)->Wait(timeout);
  if (!code.has_value()) {
    return absl::DeadlineExceededError(absl::StrCat("command did not finish; stdout: ",
                                                    (*p)->Output(), " stderr: ", (*p)->Errors()));
  }
  CommandResult r;
  r.exit_code = *code;
  r.out = (*p)->Output();
  r.err = (*p)->Errors();
  return r;
}

}  // namespace understudy::testing
