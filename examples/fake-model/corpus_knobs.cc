// Corpus loading and the /control JSON format. nlohmann::json throws; every
// call that can throw is caught here.
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/fake-model/fake_model.h"

namespace understudy::fake_model {
namespace {

using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

constexpr double kMaxLatencyMs = 600000.0;  // 10 minutes
constexpr double kMaxSigma = 5.0;

const char* const kKnobKeys[] = {"model",
                                 "seed",
                                 "latency_ms",
                                 "latency_sigma",
                                 "ttft_ms",
                                 "ttft_sigma",
                                 "error_rate",
                                 "failing_user_rate",
                                 "rate_limit_rate",
                                 "hang",
                                 "hang_rate",
                                 "refusal_rate",
                                 "invalid_json_rate",
                                 "wrong_answer_rate",
                                 "paraphrase_rate",
                                 "truncation_rate",
                                 "compress",
                                 "system_fingerprint",
                                 "shorten"};

absl::Status Bad(const std::string& key, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(key, ": ", what));
}

absl::StatusOr<double> GetNumber(const Json& v, const std::string& key,
                                 double lo, double hi) {
  if (!v.is_number())
    return Bad(key, absl::StrCat("must be a number in [", lo, ", ", hi,
                                 "], got ", v.dump()));
  double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    return Bad(key, absl::StrCat("must be a number in [", lo, ", ", hi,
                                 "], got ", v.dump()));
  }
  return d;
}

}  // namespace

absl::StatusOr<std::vector<CorpusEntry>> ParseCorpus(std::string_view jsonl) {
  std::vector<CorpusEntry> out;
  std::istringstream in{std::string(jsonl)};
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    auto where = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrCat("corpus line ", line_no, ": ", what));
    };
    OJson item = OJson::parse(line, nullptr, /*allow_exceptions=*/false);
    if (item.is_discarded()) return where("not valid JSON");
    if (!item.is_object()) return where("must be a JSON object");
    CorpusEntry entry;
    for (auto it = item.begin(); it != item.end(); ++it) {
      const std::string& key = it.key();
      const OJson& v = it.value();
      if (key == "id" || key == "question" || key == "answer") {
        if (!v.is_string())
          return where(absl::StrCat("\"", key, "\" must be a string"));
        (key == "id"         ? entry.id
         : key == "question" ? entry.question
                             : entry.answer) = v.get<std::string>();
      } else if (key == "json") {
        if (!v.is_object() && !v.is_array())
          return where("\"json\" must be a JSON object or array");
        entry.json_answer = v.dump();
      } else if (key == "tool_call") {
        if (!v.is_object() || !v.contains("name") || !v["name"].is_string() ||
            v["name"].get<std::string>().empty()) {
          return where(
              "\"tool_call\" must be {\"name\": non-empty string, "
              "\"arguments\": object}");
        }
        entry.tool_name = v["name"].get<std::string>();
        if (v.contains("arguments")) {
          if (!v["arguments"].is_object())
            return where("\"tool_call.arguments\" must be a JSON object");
          entry.tool_arguments = v["arguments"].dump();
        } else {
          entry.tool_arguments = "{}";
        }
      } else {
        return where(
            absl::StrCat("unknown key \"", key,
                         "\" (known: id, question, answer, json, tool_call)"));
      }
    }
    if (entry.question.empty()) return where("\"question\" is required");
    if (entry.answer.empty()) return where("\"answer\" is required");
    if (entry.id.empty()) entry.id = absl::StrCat("line-", line_no);
    out.push_back(std::move(entry));
  }
  if (out.empty()) return absl::InvalidArgumentError("corpus has no entries");
  return out;
}

absl::StatusOr<std::vector<CorpusEntry>> LoadCorpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read corpus file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  absl::StatusOr<std::vector<CorpusEntry>> corpus = ParseCorpus(buffer.str());
  if (!corpus.ok()) {
    return absl::Status(corpus.status().code(),
                        absl::StrCat(path, ": ", corpus.status().message()));
  }
  return corpus;
}

std::string KnobsToJson(const FakeModelKnobs& k) {
  OJson j;
  j["model"] = k.model;
  j["seed"] = k.seed;
  j["latency_ms"] = absl::ToDoubleMilliseconds(k.latency.median);
  j["latency_sigma"] = k.latency.sigma;
  j["ttft_ms"] = absl::ToDoubleMilliseconds(k.ttft.median);
  j["ttft_sigma"] = k.ttft.sigma;
  j["error_rate"] = k.error_rate;
  j["failing_user_rate"] = k.failing_user_rate;
  j["rate_limit_rate"] = k.rate_limit_rate;
  j["hang"] = k.hang;
  j["hang_rate"] = k.hang_rate;
  j["refusal_rate"] = k.refusal_rate;
  j["invalid_json_rate"] = k.invalid_json_rate;
  j["wrong_answer_rate"] = k.wrong_answer_rate;
  j["paraphrase_rate"] = k.paraphrase_rate;
  j["truncation_rate"] = k.truncation_rate;
  j["compress"] = k.compress;
  j["system_fingerprint"] = k.system_fingerprint;
  j["shorten"] = k.shorten;
  return j.dump();
}

absl::StatusOr<FakeModelKnobs> ApplyKnobsJson(const FakeModelKnobs& base,
                                              std::string_view json) {
  Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return absl::InvalidArgumentError("knobs: body is not valid JSON");
  if (!j.is_object())
    return absl::InvalidArgumentError("knobs: body must be a JSON object");
  FakeModelKnobs k = base;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const Json& v = it.value();
    if (key == "model") {
      if (!v.is_string() || v.get<std::string>().empty() ||
          v.get<std::string>().size() > 200) {
        return Bad(key, "must be a non-empty string of at most 200 characters");
      }
      k.model = v.get<std::string>();
    } else if (key == "system_fingerprint") {
      if (!v.is_string() || v.get<std::string>().size() > 200) {
        return Bad(key, "must be a string of at most 200 characters");
      }
      k.system_fingerprint = v.get<std::string>();
    } else if (key == "shorten") {
      absl::StatusOr<double> r = GetNumber(v, key, 0, 0.95);
      if (!r.ok()) return r.status();
      k.shorten = *r;
    } else if (key == "seed") {
      if (!v.is_number_integer() ||
          (v.is_number_integer() && !v.is_number_unsigned() &&
           v.get<int64_t>() < 0)) {
        return Bad(key, absl::StrCat("must be a non-negative integer, got ",
                                     v.dump()));
      }
      k.seed = v.get<uint64_t>();
    } else if (key == "latency_ms" || key == "ttft_ms") {
      absl::StatusOr<double> ms = GetNumber(v, key, 0, kMaxLatencyMs);
      if (!ms.ok()) return ms.status();
      (key == "latency_ms" ? k.latency : k.ttft).median =
          absl::Microseconds(std::llround(*ms * 1000));
    } else if (key == "latency_sigma" || key == "ttft_sigma") {
      absl::StatusOr<double> sigma = GetNumber(v, key, 0, kMaxSigma);
      if (!sigma.ok()) return sigma.status();
      (key == "latency_sigma" ? k.latency : k.ttft).sigma = *sigma;
    } else if (key == "hang" || key == "compress") {
      if (!v.is_boolean())
        return Bad(key, absl::StrCat("must be true or false, got ", v.dump()));
      (key == "hang" ? k.hang : k.compress) = v.get<bool>();
    } else {
      double* rate = key == "error_rate"          ? &k.error_rate
                     : key == "failing_user_rate" ? &k.failing_user_rate
                     : key == "rate_limit_rate"   ? &k.rate_limit_rate
                     : key == "hang_rate"         ? &k.hang_rate
                     : key == "refusal_rate"      ? &k.refusal_rate
                     : key == "invalid_json_rate" ? &k.invalid_json_rate
                     : key == "wrong_answer_rate" ? &k.wrong_answer_rate
                     : key == "paraphrase_rate"   ? &k.paraphrase_rate
                     : key == "truncation_rate"   ? &k.truncation_rate
                                                  : nullptr;
      if (rate == nullptr) {
        return Bad(key,
                   absl::StrCat("unknown knob (known: ",
                                absl::StrJoin(kKnobKeys, ", "), ", reset)"));
      }
      absl::StatusOr<double> r = GetNumber(v, key, 0, 1);
      if (!r.ok()) return r.status();
      *rate = *r;
    }
  }
  return k;
}

}  // namespace understudy::fake_model
