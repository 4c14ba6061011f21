// The admin CLI: `understudy status|promote|pause|resume|rollback|
// set-weight|diffs|report`, each one HTTP call to the admin API (libcurl
// easy interface). Every call, read or write, carries the token when there
// is one: --token-file, else $UNDERSTUDY_ADMIN_TOKEN, else the file named by
// $UNDERSTUDY_ADMIN_TOKEN_FILE (the Helm chart sets it to the mounted
// Secret, so `kubectl exec ... understudy status` works as is).
#include <curl/curl.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "compare/compare.h"
#include "rollout/rollout.h"
#include "common/json_util.h"
#include "cli/commands.h"

namespace understudy::cli {

namespace {

using nlohmann::json;

constexpr char kDefaultAdmin[] = "http://127.0.0.1:9901";

// ------------------------------------------------------------ HTTP (curl) --

struct HttpResult {
  long status = 0;
  std::string body;
};

size_t Append(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

void GlobalInitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Fetch makes one request; a non-OK status means no HTTP answer at all
// (connection refused, timeout, DNS...), with curl's reason.
absl::StatusOr<HttpResult> Fetch(const std::string& method, const std::string& url,
                                 const std::string* body, const std::string& token) {
  GlobalInitCurl();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return absl::InternalError("curl_easy_init failed");
  CURL* h = curl.get();
  HttpResult result;
  char error[CURL_ERROR_SIZE] = {0};
  struct curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  std::string auth;
  if (!token.empty()) {
    auth = absl::StrCat("Authorization: Bearer ", token);
    headers = curl_slist_append(headers, auth.c_str());
  }
  if (body != nullptr) headers = curl_slist_append(headers, "Content-Type: application/json");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers,
                                                                           curl_slist_free_all);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "understudy-cli");
  if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != nullptr ? body->c_str() : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(body != nullptr ? body->size() : 0));
  }
  CURLcode rc = curl_easy_perform(h);
  // Drop the header list (with the token) from memory as soon as possible.
  header_guard.reset();
  if (rc != CURLE_OK) {
    return absl::UnavailableError(error[0] != '\0' ? error : curl_easy_strerror(rc));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
  return result;
}

std::string Escape(const std::string& s) {
  GlobalInitCurl();
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  if (e == nullptr) return s;
  std::string out(e);
  curl_free(e);
  return out;
}

// ---------------------------------------------------------------- options --

struct CommonArgs {
  std::string admin = kDefaultAdmin;
  std::string token_file;
  std::string output = "text";
  std::string actor;
};

struct Io {
  std::ostream& out;
  std::ostream& err;
};

void AddCommon(CLI::App* cmd, CommonArgs* args, bool mutating) {
  cmd->add_option("--admin", args->admin,
                  "admin API base URL (default $UNDERSTUDY_ADMIN or http://127.0.0.1:9901)")
      ->envname("UNDERSTUDY_ADMIN");
  cmd->add_option("--token-file", args->token_file,
                  mutating ? "file holding the admin token (default: $UNDERSTUDY_ADMIN_TOKEN, "
                             "else the file $UNDERSTUDY_ADMIN_TOKEN_FILE)"
                           : "file holding the admin or read-only token (default: "
                             "$UNDERSTUDY_ADMIN_TOKEN, else the file "
                             "$UNDERSTUDY_ADMIN_TOKEN_FILE)");
  cmd->add_option("-o,--output", args->output, "output format: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  if (mutating) {
    cmd->add_option("--actor", args->actor, "your name in the decision log (default $USER)");
  }
}

std::string Actor(const CommonArgs& args) {
  if (!args.actor.empty()) return args.actor;
  const char* user = std::getenv("USER");
  if (user != nullptr && *user != '\0') return user;
  return "cli";
}

// ----------------------------------------------------------------- calls --

// A call's outcome: the exit code, and the JSON reply when it succeeded.
struct CallResult {
  int exit_code = kExitOk;
  std::string body;
};

std::string ServerMessage(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    return JsonString(j["error"], "message", "");
  }
  return std::string(absl::StripAsciiWhitespace(body.substr(0, 300)));
}

CallResult Call(std::string_view name, const CommonArgs& args, const std::string& method,
                const std::string& path, const json* body, Io io) {
  std::string prefix = absl::StrCat("understudy ", Av(name), ": ");
  std::string base = args.admin;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (!absl::StartsWith(base, "http://") && !absl::StartsWith(base, "https://")) {
    io.err << prefix << "--admin: must be a URL like http://127.0.0.1:9901, got \"" << args.admin
           << "\"\n";
    return {kExitUsage, ""};
  }
  // The token goes on every call, GETs included: with a token configured
  // the admin API answers nothing but /healthz without one.
  std::string token;
  const char* env_token = std::getenv("UNDERSTUDY_ADMIN_TOKEN");
  const char* env_file = std::getenv("UNDERSTUDY_ADMIN_TOKEN_FILE");
  std::string token_file = args.token_file;
  std::string token_flag = "--token-file";
  if (token_file.empty() && (env_token == nullptr || *env_token == '\0') && env_file != nullptr &&
      *env_file != '\0') {
    token_file = env_file;
    token_flag = "$UNDERSTUDY_ADMIN_TOKEN_FILE";
  }
  if (!token_file.empty()) {
    std::ifstream in(token_file, std::ios::binary);
    if (!in) {
      io.err << prefix << token_flag << ": cannot read " << token_file << ": "
             << std::strerror(errno) << "\n";
      return {kExitUsage, ""};
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    token = std::string(absl::StripAsciiWhitespace(ss.str()));
    if (token.empty()) {
      io.err << prefix << token_flag << ": " << token_file << " is empty\n";
      return {kExitUsage, ""};
    }
  } else if (env_token != nullptr) {
    token = std::string(absl::StripAsciiWhitespace(env_token));
  }
  std::string url = base + path;
  std::string payload = body != nullptr ? DumpJson(*body) : "";
  absl::StatusOr<HttpResult> r = Fetch(method, url, body != nullptr ? &payload : nullptr, token);
  if (!r.ok()) {
    io.err << prefix << "cannot reach the admin API at " << url << ": " << r.status().message()
           << "\n";
    return {kExitFailure, ""};
  }
  if (r->status >= 400) {
    std::string message = ServerMessage(r->body);
    if (r->status >= 500) {
      io.err << prefix << "the admin API at " << url << " failed (HTTP " << r->status
             << "): " << message << "\n";
      return {kExitFailure, ""};
    }
    io.err << prefix << message << " (HTTP " << r->status << ")\n";
    return {kExitUsage, ""};
  }
  if (r->status < 200 || r->status >= 300) {
    io.err << prefix << "unexpected HTTP " << r->status << " from " << url << "\n";
    return {kExitFailure, ""};
  }
  return {kExitOk, std::move(r->body)};
}

// ParseReply parses a successful JSON reply; a non-JSON one is a failure.
bool ParseReply(std::string_view name, const std::string& body, json* out, Io io) {
  *out = json::parse(body, nullptr, false);
  if (out->is_discarded()) {
    io.err << "understudy " << name << ": the admin API answered with invalid JSON\n";
    return false;
  }
  return true;
}

void PrintJson(const json& j, Io io) { io.out << DumpJson(j, 2) << "\n"; }

// ------------------------------------------------------------ text output

// The admin JSON carries enum names ("PHASE_CANARY", "GATE_PASS",
// "ACTION_ROLLBACK"); these print them the way the rest of Understudy names
// them.
std::string PhaseText(const std::string& phase) {
  understudy::v1::RolloutPhase p = understudy::v1::PHASE_UNSPECIFIED;
  understudy::v1::RolloutPhase_Parse(phase, &p);
  return std::string(rollout::PhaseName(p));
}
std::string GateOutcomeText(const std::string& outcome) {
  understudy::v1::GateOutcome o = understudy::v1::GATE_UNSPECIFIED;
  understudy::v1::GateOutcome_Parse(outcome, &o);
  return std::string(rollout::GateOutcomeName(o));
}
std::string HoldReasonText(const std::string& reason) {
  understudy::v1::HoldReason r = understudy::v1::HOLD_NONE;
  understudy::v1::HoldReason_Parse(reason, &r);
  std::string text(rollout::HoldReasonName(r));
  absl::StrReplaceAll({{"_", " "}}, &text);
  return text;
}
std::string ActionText(const std::string& action) {
  understudy::v1::DecisionAction a = understudy::v1::ACTION_UNSPECIFIED;
  understudy::v1::DecisionAction_Parse(action, &a);
  return std::string(rollout::DecisionActionName(a));
}

std::string Percent(double fraction) { return absl::StrFormat("%.2f%%", fraction * 100); }

void PrintArmRow(const char* name, const json& arm, Io io) {
  if (!arm.is_object()) return;
  int64_t requests = JsonInt64(arm, "requests");
  int64_t feedback = JsonInt64(arm, "feedback_count");
  int64_t comparisons = JsonInt64(arm, "comparisons");
  std::string error_rate = requests > 0 ? Percent(JsonDouble(arm, "error_rate")) : "-";
  std::string p95 =
      requests > 0 ? absl::StrFormat("%.0f ms", JsonDouble(arm, "latency_p95_ms")) : "-";
  std::string satisfaction =
      feedback > 0 ? absl::StrFormat("%.2f (n=%d)", JsonDouble(arm, "satisfaction_mean"), feedback)
                   : "-";
  std::string agreement =
      comparisons > 0
          ? absl::StrFormat("%s (n=%d)", Percent(JsonDouble(arm, "agreement_rate")), comparisons)
          : "-";
  io.out << absl::StrFormat("  %-11s %9d %11s %12s %15s %16s\n", name, requests, error_rate, p95,
                            satisfaction, agreement);
}

void PrintStatus(const json& j, Io io) {
  const json& state = j.value("state", json::object());
  const json& health = j.value("health", json::object());
  const json& stages = j.value("stages", json::array());
  int64_t index = JsonInt64(state, "stage_index");
  std::string stage = absl::StrCat(index + 1, "/", stages.size());
  if (stages.is_array() && index >= 0 && index < static_cast<int64_t>(stages.size()) &&
      stages[index].is_number()) {
    int percent = stages[index].get<int>();
    absl::StrAppend(&stage, " (", percent == 0 ? std::string("shadow") : absl::StrCat(percent, "%"),
                    ")");
  }
  io.out << "phase:         " << PhaseText(JsonString(state, "phase")) << "\n";
  io.out << "stage:         " << stage << "\n";
  io.out << "weight:        "
         << absl::StrFormat("%.2f%%", JsonInt64(state, "weight_basis_points") / 100.0)
         << " of live traffic to the candidate\n";
  int64_t started = JsonInt64(state, "stage_started_unix_micros");
  int64_t now = JsonInt64(health, "time_unix_micros");
  if (started > 0 && now >= started) {
    absl::Duration in_stage = absl::Trunc(absl::Microseconds(now - started), absl::Seconds(1));
    io.out << "time in stage: "
           << (in_stage == absl::ZeroDuration() ? "0s" : absl::FormatDuration(in_stage)) << "\n";
  }
  std::string paused = JsonString(state, "paused_reason");
  if (!paused.empty()) io.out << "paused:        " << paused << "\n";
  std::string reason = JsonString(state, "last_reason");
  io.out << "last reason:   " << (reason.empty() ? "-" : reason) << "\n";
  if (int64_t rollbacks = JsonInt64(state, "rollbacks"); rollbacks > 0) {
    io.out << "rollbacks:     " << rollbacks << "\n";
  }
  // Fleet mode (docs/fleet.md): who judges, and whether etcd answers.
  if (const json& fleet = j.value("fleet", json()); fleet.is_object()) {
    const std::string member = JsonString(fleet, "member");
    const std::string leader = JsonString(fleet, "leader");
    const bool leads = fleet.value("is_leader", false);
    io.out << "fleet:         " << JsonInt64(fleet, "members") << " replicas; this one ("
           << member << ") " << (leads ? "leads and judges"
                                       : absl::StrCat("follows ",
                                                      leader.empty() ? "no leader yet" : leader))
           << (fleet.value("etcd_reachable", false) ? "" : "; etcd UNREACHABLE") << "\n";
    if (std::string err = JsonString(fleet, "error"); !err.empty()) {
      io.out << "fleet error:   " << err << "\n";
    }
  }
  // Why the judge's latest tick held and what would unblock it.
  std::string hold = JsonString(health, "hold_reason");
  if (!hold.empty() && hold != "HOLD_NONE") {
    std::string unblock = JsonString(health, "unblock");
    io.out << "holding:       " << HoldReasonText(hold)
           << (unblock.empty() ? "" : absl::StrCat(": ", unblock)) << "\n";
  }
  // Revisit triggers that fired (docs/drift.md), each with what to do next.
  if (const json& revisit = j.value("revisit", json::array()); revisit.is_array()) {
    for (const json& t : revisit) {
      if (!t.is_object()) continue;
      io.out << "revisit:       " << JsonString(t, "kind") << ": " << JsonString(t, "detail")
             << " — " << JsonString(t, "action") << "\n";
    }
  }
  io.out << "\n"
         << absl::StrFormat("  %-11s %9s %11s %12s %15s %16s\n", "arm", "requests", "error rate",
                            "p95 latency", "satisfaction", "agreement");
  PrintArmRow("production", health.value("production", json()), io);
  PrintArmRow("candidate", health.value("candidate", json()), io);
  PrintArmRow("shadow", health.value("shadow", json()), io);
  // The judge's latest evaluation, one gate a line (values in each gate's
  // own unit, as in the report).
  const json& gates = health.value("gates", json::array());
  if (!gates.is_array() || gates.empty()) return;
  // Clusters are routing buckets with data (docs/statistics.md §1); the
  // design effect is how much clustering inflates the variance.
  io.out << "\n"
         << absl::StrFormat("  %-17s %-13s %12s %12s %12s %17s %7s\n", "gate", "outcome",
                            "production", "candidate", "threshold", "clusters (p / c)",
                            "deff");
  for (const json& g : gates) {
    const double deff = JsonDouble(g, "design_effect");
    io.out << absl::StrFormat(
        "  %-17s %-13s %12.4g %12.4g %12.4g %17s %7s\n", JsonString(g, "gate"),
        GateOutcomeText(JsonString(g, "outcome")), JsonDouble(g, "production_value"),
        JsonDouble(g, "candidate_value"), JsonDouble(g, "threshold"),
        absl::StrCat(JsonInt64(g, "production_clusters"), " / ",
                     JsonInt64(g, "candidate_clusters")),
        deff > 0 ? absl::StrFormat("%.2f", deff) : std::string("-"));
  }
}

void PrintDecision(const json& j, Io io) {
  const json& d = j.value("decision", json::object());
  const json& state = j.value("state", json::object());
  io.out << ActionText(JsonString(d, "action")) << ": " << JsonString(d, "reason") << "\n";
  io.out << "now: " << PhaseText(JsonString(state, "phase")) << ", stage index "
         << JsonInt64(state, "stage_index") << ", weight "
         << absl::StrFormat("%.2f%%", JsonInt64(state, "weight_basis_points") / 100.0) << "\n";
}

void PrintDiffs(const json& j, Io io) {
  const json& list = j.value("comparisons", json::array());
  if (!list.is_array() || list.empty()) {
    io.out << "no comparisons\n";
    return;
  }
  for (const json& c : list) {
    std::string verdict = JsonString(c, "verdict");
    if (std::optional<understudy::v1::Verdict> v = compare::ParseVerdictName(verdict)) {
      verdict = std::string(compare::VerdictName(*v));
    }
    int64_t t = JsonInt64(c, "time_unix_micros");
    io.out << JsonString(c, "request_id") << "  " << verdict;
    if (t > 0) {
      io.out << "  "
             << absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(t), absl::UTCTimeZone());
    }
    io.out << "\n";
    // Top findings: major ones first, at most three.
    std::vector<const json*> findings;
    if (c.contains("findings") && c["findings"].is_array()) {
      for (const json& f : c["findings"]) findings.push_back(&f);
    }
    std::stable_sort(findings.begin(), findings.end(), [](const json* a, const json* b) {
      return a->value("major", false) && !b->value("major", false);
    });
    for (size_t i = 0; i < findings.size() && i < 3; ++i) {
      const json& f = *findings[i];
      io.out << "    [" << (f.value("major", false) ? "major" : "minor") << "] "
             << JsonString(f, "kind");
      std::string path = JsonString(f, "path");
      if (!path.empty()) io.out << " at " << path;
      io.out << ": " << JsonString(f, "message") << "\n";
    }
    if (findings.size() > 3) io.out << "    ... " << findings.size() - 3 << " more\n";
  }
}

// -------------------------------------------------------------- commands --

using Printer = void (*)(const json&, Io);

int Finish(std::string_view name, const CommonArgs& args, const CallResult& r, Printer text,
           Io io) {
  if (r.exit_code != kExitOk) return r.exit_code;
  json j;
  if (!ParseReply(name, r.body, &j, io)) return kExitFailure;
  if (args.output == "json") {
    PrintJson(j, io);
  } else {
    text(j, io);
  }
  return kExitOk;
}

void RegisterMutation(CLI::App& app, int* exit_code, Io io, const char* name,
                      const char* description, const char* path,
                      std::function<void(CLI::App*)> add_options,
                      std::function<json(const std::string& actor)> make_body) {
  auto args = std::make_shared<CommonArgs>();
  CLI::App* cmd = app.add_subcommand(name, description);
  AddCommon(cmd, args.get(), /*mutating=*/true);
  if (add_options) add_options(cmd);
  cmd->callback([=] {
    json body = make_body(Actor(*args));
    CallResult r = Call(name, *args, "POST", path, &body, io);
    *exit_code = Finish(name, *args, r, &PrintDecision, io);
  });
}

}  // namespace

void RegisterAdminClientCommands(CLI::App& app, int* exit_code, std::ostream& out,
                                 std::ostream& err) {
  Io io{out, err};

  {
    auto args = std::make_shared<CommonArgs>();
    CLI::App* cmd = app.add_subcommand("status", "Show the rollout's phase, stage and health");
    AddCommon(cmd, args.get(), false);
    cmd->callback([=] {
      CallResult r = Call("status", *args, "GET", "/v1/rollout", nullptr, io);
      *exit_code = Finish("status", *args, r, &PrintStatus, io);
    });
  }

  auto to_full = std::make_shared<bool>(false);
  RegisterMutation(
      app, exit_code, io, "promote", "Promote the candidate to the next stage (or to 100%)",
      "/v1/rollout/promote",
      [to_full](CLI::App* cmd) { cmd->add_flag("--to-full", *to_full, "go straight to 100%"); },
      [to_full](const std::string& actor) {
        return json{{"actor", actor}, {"to_full", *to_full}};
      });

  auto pause_reason = std::make_shared<std::string>();
  RegisterMutation(
      app, exit_code, io, "pause", "Hold the current weight; the judge stops acting",
      "/v1/rollout/pause",
      [pause_reason](CLI::App* cmd) {
        cmd->add_option("--reason", *pause_reason, "why (kept in the decision log)");
      },
      [pause_reason](const std::string& actor) {
        return json{{"actor", actor}, {"reason", *pause_reason}};
      });

  RegisterMutation(app, exit_code, io, "resume", "Resume a paused rollout", "/v1/rollout/resume",
                   nullptr, [](const std::string& actor) {
                     return json{{"actor", actor}};
                   });

  auto rollback_reason = std::make_shared<std::string>();
  RegisterMutation(
      app, exit_code, io, "rollback", "Send all traffic back to production", "/v1/rollout/rollback",
      [rollback_reason](CLI::App* cmd) {
        cmd->add_option("--reason", *rollback_reason, "why (kept in the decision log)")->required();
      },
      [rollback_reason](const std::string& actor) {
        return json{{"actor", actor}, {"reason", *rollback_reason}};
      });

  auto percent = std::make_shared<double>(0);
  RegisterMutation(
      app, exit_code, io, "set-weight",
      "Set the candidate's share of live traffic (pauses the judge)", "/v1/rollout/weight",
      [percent](CLI::App* cmd) {
        cmd->add_option("PERCENT", *percent, "percent of live traffic, 0..100")
            ->required()
            ->check(CLI::Range(0.0, 100.0));
      },
      [percent](const std::string& actor) {
        return json{{"actor", actor}, {"percent", *percent}};
      });

  {
    auto args = std::make_shared<CommonArgs>();
    auto limit = std::make_shared<int>(20);
    auto verdict = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("diffs", "List recent comparisons, newest first");
    AddCommon(cmd, args.get(), false);
    cmd->add_option("--limit", *limit, "how many (1..1000)")->check(CLI::Range(1, 1000));
    cmd->add_option("--verdict", *verdict,
                    "only this verdict (equivalent, minor_diff, major_diff, candidate_error, "
                    "production_error, both_error; comma-separated for several)");
    cmd->callback([=] {
      std::string path = absl::StrCat("/v1/comparisons?limit=", *limit);
      if (!verdict->empty()) absl::StrAppend(&path, "&verdict=", Escape(*verdict));
      CallResult r = Call("diffs", *args, "GET", path, nullptr, io);
      *exit_code = Finish("diffs", *args, r, &PrintDiffs, io);
    });
  }

  {
    auto args = std::make_shared<CommonArgs>();
    auto format = std::make_shared<std::string>("md");
    CLI::App* cmd = app.add_subcommand("report", "Print the rollout report");
    AddCommon(cmd, args.get(), false);
    cmd->add_option("--format", *format, "md, json or html")
        ->check(CLI::IsMember({"md", "json", "html"}));
    cmd->callback([=] {
      CallResult r =
          Call("report", *args, "GET", absl::StrCat("/v1/report?format=", *format), nullptr, io);
      *exit_code = r.exit_code;
      if (r.exit_code != kExitOk) return;
      // The report is printed as served, whatever -o says.
      io.out << r.body;
      if (!r.body.empty() && r.body.back() != '\n') io.out << "\n";
    });
  }
}

void RegisterAdminClientCommands(CLI::App& app, int* exit_code) {
  RegisterAdminClientCommands(app, exit_code, std::cout, std::cerr);
}

}  // namespace understudy::cli
