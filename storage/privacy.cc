#include "storage/privacy.h"

#include <openssl/evp.h>

#include <cctype>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace understudy::storage {
namespace {

using Json = nlohmann::json;

// Applies `path` from segment `i` on, replacing what it reaches.
void RedactAt(Json& node, const JsonPath& path, size_t i) {
  if (i == path.size()) {
    node = std::string(kRedacted);
    return;
  }
  const JsonPathSegment& seg = path[i];
  auto apply_index = [&](Json& target) {
    switch (seg.index) {
      case JsonPathSegment::Index::kNone:
        RedactAt(target, path, i + 1);
        break;
      case JsonPathSegment::Index::kAll:
        if (target.is_array()) {
          for (Json& item : target) RedactAt(item, path, i + 1);
        }
        break;
      case JsonPathSegment::Index::kOne:
        if (target.is_array() && seg.position < target.size()) {
          RedactAt(target[seg.position], path, i + 1);
        }
        break;
    }
  };
  if (seg.name.empty()) {
    apply_index(node);
  } else if (seg.name == "*") {
    if (node.is_object()) {
      for (auto& item : node.items()) apply_index(item.value());
    }
  } else if (node.is_object()) {
    auto it = node.find(seg.name);
    if (it != node.end()) apply_index(*it);
  }
}

// Returns true and replaces `text` when it is JSON and a path changed it.
bool RedactJson(std::string* text, const std::vector<JsonPath>& paths) {
  Json doc = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !(doc.is_object() || doc.is_array())) return false;
  for (const JsonPath& p : paths) RedactAt(doc, p, 0);
  try {
    *text = doc.dump(-1, ' ', false, Json::error_handler_t::replace);
  } catch (const std::exception&) {
    return false;  // cannot happen with `replace`, but nothing may escape
  }
  return true;
}

}  // namespace

const std::vector<std::string>& BuiltinSecretHeaders() {
  static const auto* headers = new std::vector<std::string>{
      "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"};
  return *headers;
}

const std::vector<std::string>& BuiltinContentJsonPaths() {
  static const auto* paths = new std::vector<std::string>{
      // Requests: chat messages (string or parts), legacy prompts, Responses
      // and embeddings input, instructions and Anthropic's system prompt.
      "messages[*].content", "messages[*].tool_calls", "prompt", "input", "instructions", "system",
      // OpenAI Chat Completions answers and stream chunks.
      "choices[*].message.content", "choices[*].message.tool_calls", "choices[*].message.refusal",
      "choices[*].message.reasoning_content", "choices[*].text", "choices[*].delta.content",
      "choices[*].delta.tool_calls", "choices[*].delta.refusal", "choices[*].logprobs",
      // OpenAI Responses answers and stream events.
      "output", "output_text", "delta", "text", "arguments", "item", "part",
      "response.output", "response.output_text", "response.instructions",
      // Anthropic Messages answers and stream events.
      "content", "content_block", "message.content",
      // Upstream errors often quote the request.
      "error.message"};
  return *paths;
}

const std::vector<std::string>& DefaultRedactPatterns() {
  static const auto* patterns = new std::vector<std::string>{
      R"(sk-[A-Za-z0-9_\-]{16,})",               // OpenAI / Anthropic style keys
      R"((?i)bearer\s+[A-Za-z0-9._~+/\-]+=*)",    // bearer tokens in text
      R"(AKIA[0-9A-Z]{16})",                       // AWS access key ids
  };
  return *patterns;
}

absl::StatusOr<JsonPath> ParseJsonPath(std::string_view path) {
  std::string_view rest = path;
  if (rest.substr(0, 2) == "$.") rest.remove_prefix(2);
  else if (rest == "$") rest = "";
  if (rest.empty()) return absl::InvalidArgumentError("empty JSON path");
  JsonPath out;
  for (absl::string_view part : absl::StrSplit(Av(rest), '.')) {
    if (part.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("bad JSON path \"", Av(path), "\": empty segment"));
    }
    JsonPathSegment seg;
    size_t bracket = part.find('[');
    seg.name = std::string(part.substr(0, bracket));
    if (bracket != absl::string_view::npos) {
      if (part.back() != ']' || part.find('[', bracket + 1) != absl::string_view::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad JSON path \"", Av(path), "\": expected name[*] or name[N]"));
      }
      absl::string_view inside = part.substr(bracket + 1, part.size() - bracket - 2);
      if (inside == "*") {
        seg.index = JsonPathSegment::Index::kAll;
      } else {
        size_t n = 0;
        if (!absl::SimpleAtoi(inside, &n)) {
          return absl::InvalidArgumentError(
              absl::StrCat("bad JSON path \"", Av(path), "\": index must be * or a number"));
        }
        seg.index = JsonPathSegment::Index::kOne;
        seg.position = n;
      }
    }
    if (seg.name.empty() && seg.index == JsonPathSegment::Index::kNone) {
      return absl::InvalidArgumentError(absl::StrCat("bad JSON path \"", Av(path), "\""));
    }
    out.push_back(std::move(seg));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Scrubber>> Scrubber::Create(const PrivacyConfig& config) {
  std::unique_ptr<Scrubber> s(new Scrubber());
  s->mode_ = config.body_mode;
  for (const std::string& h : BuiltinSecretHeaders()) s->secret_headers_.insert(h);
  for (const std::string& h : config.secret_headers) {
    s->secret_headers_.insert(absl::AsciiStrToLower(h));
  }
  std::vector<std::string> paths = config.redact_json_paths;
  if (config.body_mode == BodyMode::kRedacted) {
    // Content is redacted whatever else is configured: "redacted" promises
    // that no prompt or answer text is kept.
    paths.insert(paths.end(), BuiltinContentJsonPaths().begin(), BuiltinContentJsonPaths().end());
  }
  for (const std::string& p : paths) {
    absl::StatusOr<JsonPath> path = ParseJsonPath(p);
    if (!path.ok()) return path.status();
    s->paths_.push_back(*std::move(path));
  }
  for (const std::string& p : config.redact_patterns) {
    auto re = std::make_unique<RE2>(p, RE2::Quiet);
    if (!re->ok()) {
      return absl::InvalidArgumentError(absl::StrCat("bad regex \"", p, "\": ", re->error()));
    }
    s->patterns_.push_back(std::move(re));
  }
  return s;
}

bool Scrubber::IsSecretHeader(std::string_view lower_name) const {
  return secret_headers_.contains(absl::AsciiStrToLower(Av(lower_name)));
}

std::string Scrubber::RedactText(std::string text) const {
  for (const auto& re : patterns_) RE2::GlobalReplace(&text, *re, re2::StringPiece(kRedacted.data(), kRedacted.size()));
  return text;
}

std::string Scrubber::RedactBody(std::string_view body) const {
  std::string text(body);
  if (!paths_.empty() && !RedactJson(&text, paths_)) {
    // Not a JSON document: try Server-Sent Events, one JSON object per
    // `data:` line. Lines that are not JSON are left to the regexes.
    bool changed = false;
    std::string out;
    out.reserve(text.size());
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      std::string l(line);
      if (absl::StartsWith(line, "data:")) {
        size_t start = 5;
        while (start < l.size() && l[start] == ' ') ++start;
        std::string payload = l.substr(start);
        bool cr = !payload.empty() && payload.back() == '\r';
        if (cr) payload.pop_back();
        if (RedactJson(&payload, paths_)) {
          l = absl::StrCat("data: ", payload, cr ? "\r" : "");
          changed = true;
        }
      }
      out.append(l);
      out.push_back('\n');
    }
    if (!out.empty()) out.pop_back();  // StrSplit kept the final segment
    if (changed) text = std::move(out);
  }
  return RedactText(std::move(text));
}

void Scrubber::ScrubMessage(v1::HttpMessage* m) const {
  auto scrub_headers = [this](google::protobuf::RepeatedPtrField<v1::Header>* headers) {
    for (int i = headers->size() - 1; i >= 0; --i) {
      if (IsSecretHeader(headers->Get(i).key())) {
        headers->DeleteSubrange(i, 1);
      } else if (mode_ == BodyMode::kRedacted) {
        v1::Header* h = headers->Mutable(i);
        h->set_value(RedactText(h->value()));
      }
    }
  };
  scrub_headers(m->mutable_headers());
  scrub_headers(m->mutable_trailers());
  switch (mode_) {
    case BodyMode::kFull:
      break;
    case BodyMode::kRedacted:
      if (!m->body().empty()) m->set_body(RedactBody(m->body()));
      break;
    case BodyMode::kHashOnly:
      if (!m->body().empty()) m->set_body_sha256(Sha256Hex(m->body()));
      m->clear_body();
      break;
    case BodyMode::kNone:
      m->clear_body();
      break;
  }
}

void Scrubber::Scrub(v1::Exchange* exchange) const {
  if (exchange->has_request()) ScrubMessage(exchange->mutable_request());
  if (exchange->has_response()) ScrubMessage(exchange->mutable_response());
  if (mode_ == BodyMode::kRedacted) exchange->set_path(RedactText(exchange->path()));
}

namespace {

// Digest stands for a finding's text: its hash prefix and length, or only
// the length when nothing derived from the body may be kept.
std::string Digest(const std::string& text, BodyMode mode) {
  if (mode == BodyMode::kNone) return absl::StrCat("[len:", text.size(), "]");
  return absl::StrCat("[sha256:", Sha256Hex(text).substr(0, 16), " len:", text.size(), "]");
}

}  // namespace

void Scrubber::ScrubComparison(v1::Comparison* c) const {
  if (mode_ == BodyMode::kFull) return;
  for (v1::Finding& f : *c->mutable_findings()) {
    std::string message = f.kind();
    if (!f.path().empty()) absl::StrAppend(&message, " at ", f.path());
    if (!f.production().empty()) {
      absl::StrAppend(&message, "; production ", f.production().size(), " bytes");
      f.set_production(Digest(f.production(), mode_));
    }
    if (!f.candidate().empty()) {
      absl::StrAppend(&message, "; candidate ", f.candidate().size(), " bytes");
      f.set_candidate(Digest(f.candidate(), mode_));
    }
    f.set_message(std::move(message));
  }
}

void Scrubber::ScrubFeedback(v1::Feedback* f) const {
  if (mode_ != BodyMode::kFull) f->clear_comment();
}

void Scrubber::ScrubEvalRun(v1::EvalRun* run) const {
  auto scrub = [this](v1::EvalAnswer* a) {
    if (a->text_sha256().empty() && (!a->text().empty() || a->text_length() == 0)) {
      a->set_text_sha256(Sha256Hex(a->text()));
      a->set_text_length(static_cast<int64_t>(a->text().size()));
    }
    if (mode_ != BodyMode::kFull) a->clear_text();
  };
  for (v1::EvalItemResult& item : *run->mutable_results()) {
    if (item.has_production()) scrub(item.mutable_production());
    if (item.has_candidate()) scrub(item.mutable_candidate());
  }
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

}  // namespace understudy::storage
