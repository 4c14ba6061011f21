// `understudy compare PRODUCTION_BODY_FILE SHADOW_BODY_FILE [--request FILE]
// [-o json]`: parses two saved response bodies (JSON or raw SSE, OpenAI or
// Anthropic, detected) and prints their Comparison.
#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "compare/compare.h"
#include "cli/commands.h"

namespace understudy::cli {

namespace {

struct CompareArgs {
  std::string production_file;
  std::string shadow_file;
  std::string request_file;
  std::string config_file;
  std::string output = "text";
};

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return false;
  *out = ss.str();
  return true;
}

void PrintText(const understudy::v1::Comparison& c) {
  std::cout << "verdict: " << compare::VerdictName(c.verdict()) << "\n";
  if (!c.production_model().empty() || !c.candidate_model().empty()) {
    std::cout << "models: " << c.production_model() << " -> " << c.candidate_model() << "\n";
  }
  std::cout << "request kind: " << c.request_kind() << "\n";
  std::cout << "scores:\n";
  for (const auto& s : c.scores()) {
    if (!s.applicable()) continue;
    std::cout << absl::StrFormat("  %-14s %.3f  %s%s\n", s.name(), s.score(), s.explanation(),
                                 s.noise_explained() ? " (noise)" : "");
  }
  if (c.findings_size() > 0) std::cout << "findings:\n";
  for (const auto& f : c.findings()) {
    std::cout << "  [" << (f.major() ? "major" : "minor") << "] " << f.kind();
    if (!f.path().empty()) std::cout << " at " << f.path();
    std::cout << ": " << f.message() << (f.noise_explained() ? " (noise)" : "") << "\n";
  }
}

int Run(const CompareArgs& args) {
  std::string prod_body, shadow_body;
  for (const auto& [path, out] :
       {std::pair<const std::string&, std::string*>{args.production_file, &prod_body},
        std::pair<const std::string&, std::string*>{args.shadow_file, &shadow_body}}) {
    if (!ReadFile(path, out)) {
      std::cerr << "understudy compare: cannot read " << path << "\n";
      return kExitUsage;
    }
  }
  compare::CompareOptions options;
  if (!args.config_file.empty()) {
    absl::StatusOr<ConfigNode> root = ConfigNode::ParseFile(args.config_file);
    if (!root.ok()) {
      std::cerr << "understudy compare: " << root.status().message() << "\n";
      return kExitUsage;
    }
    absl::StatusOr<compare::CompareOptions> parsed =
        compare::ParseCompareOptions(root->Child("compare"));
    if (!parsed.ok()) {
      std::cerr << "understudy compare: " << parsed.status().message() << "\n";
      return kExitUsage;
    }
    options = *std::move(parsed);
  } else if (absl::Status s = compare::CompileRefusalPatterns(&options); !s.ok()) {
    std::cerr << "understudy compare: " << s.message() << "\n";
    return kExitFailure;
  }
  compare::CompareContext ctx;
  if (!args.request_file.empty()) {
    std::string request_body;
    if (!ReadFile(args.request_file, &request_body)) {
      std::cerr << "understudy compare: cannot read " << args.request_file << "\n";
      return kExitUsage;
    }
    absl::StatusOr<compare::RequestInfo> request = compare::ParseRequest(request_body);
    if (!request.ok()) {
      std::cerr << "understudy compare: " << args.request_file << ": "
                << request.status().message() << "\n";
      return kExitFailure;
    }
    ctx.request = *request;
  }
  // A body that cannot be parsed is reported as that side's error, so the
  // comparison still says which side failed.
  auto parse = [](const std::string& path, const std::string& body) {
    absl::StatusOr<compare::ModelAnswer> a = compare::ParseAnswer(body);
    if (a.ok()) return *std::move(a);
    std::cerr << "understudy compare: " << path << ": " << a.status().message() << "\n";
    return compare::ModelAnswer::FromError("unparseable", std::string(a.status().message()));
  };
  compare::ModelAnswer production = parse(args.production_file, prod_body);
  compare::ModelAnswer shadow = parse(args.shadow_file, shadow_body);
  understudy::v1::Comparison c = compare::Compare(production, shadow, options, ctx);
  if (args.output == "json") {
    google::protobuf::util::JsonPrintOptions print;
    print.add_whitespace = true;
    print.always_print_primitive_fields = true;
    print.preserve_proto_field_names = true;
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(c, &json, print).ok()) {
      std::cerr << "understudy compare: cannot print the comparison as JSON\n";
      return kExitFailure;
    }
    std::cout << json << "\n";
  } else {
    PrintText(c);
  }
  return kExitOk;
}

}  // namespace

void RegisterCompareCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compare", "Compare a production and a shadow response body (JSON or SSE)");
  cmd->add_option("PRODUCTION_BODY_FILE", args->production_file, "production response body")
      ->required();
  cmd->add_option("SHADOW_BODY_FILE", args->shadow_file, "shadow (candidate) response body")
      ->required();
  cmd->add_option("--request", args->request_file,
                  "the request body (model, stream, response_format)");
  cmd->add_option("--config", args->config_file, "YAML config whose compare: section to use");
  cmd->add_option("-o,--output", args->output, "output format")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace understudy::cli
