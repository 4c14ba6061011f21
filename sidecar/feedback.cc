#include "sidecar/feedback.h"

#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json_util.h"
#include "common/status_macros.h"

namespace understudy::sidecar {

absl::StatusOr<understudy::v1::Feedback> ParseFeedbackJson(std::string_view raw) {
  ASSIGN_OR_RETURN(nlohmann::json body, ParseJsonObject(raw));
  RETURN_IF_ERROR(CheckJsonFields(body, {"request_id", "score", "comment"}));
  ASSIGN_OR_RETURN(std::string request_id, JsonRequiredString(body, "request_id"));
  if (request_id.size() > 512) {
    return absl::InvalidArgumentError("request_id: longer than 512 bytes");
  }
  if (request_id.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("request_id: must not contain NUL");
  }
  auto it = body.find("score");
  if (it == body.end() || it->is_null()) {
    return absl::InvalidArgumentError(
        "score: required (a number in [0,1], \"up\"/\"down\" or true/false)");
  }
  double score = 0;
  if (it->is_boolean()) {
    score = it->get<bool>() ? 1.0 : 0.0;
  } else if (it->is_number()) {
    score = it->get<double>();
    if (!(score >= 0 && score <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("score: must be in [0,1], got ", DumpJson(*it)));
    }
  } else if (it->is_string() && absl::EqualsIgnoreCase(it->get<std::string>(), "up")) {
    score = 1.0;
  } else if (it->is_string() && absl::EqualsIgnoreCase(it->get<std::string>(), "down")) {
    score = 0.0;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("score: must be a number in [0,1], \"up\"/\"down\" or true/false, got ",
                     DumpJson(*it)));
  }
  ASSIGN_OR_RETURN(std::string comment, JsonOptionalString(body, "comment", ""));
  if (comment.size() > 4096) return absl::InvalidArgumentError("comment: longer than 4096 bytes");
  understudy::v1::Feedback fb;
  fb.set_request_id(request_id);
  fb.set_score(score);
  fb.set_comment(comment);
  return fb;
}

}  // namespace understudy::sidecar
