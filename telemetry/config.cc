// telemetry/config.cc
// ParseTelemetryConfig: the `telemetry:` section.
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "telemetry/tracer.h"

namespace understudy::telemetry {
namespace {

#ifndef UNDERSTUDY_VERSION
#define UNDERSTUDY_VERSION "0.0.0"
#endif

// Header names are HTTP tokens; gRPC metadata additionally wants lower
// case and rejects the reserved "grpc-" prefix and pseudo-headers.
absl::Status CheckHeaderName(const ConfigNode& headers, const std::string& name) {
  if (name.empty()) return headers.Error(name, "header name must not be empty");
  for (char c : name) {
    const bool ok =
        absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    if (!ok) {
      return headers.Error(name, "header name may hold only letters, digits, '-', '_' and '.'");
    }
  }
  std::string lower = absl::AsciiStrToLower(name);
  if (absl::StartsWith(lower, "grpc-") || lower == "content-type" || lower == "te" ||
      lower == "content-length") {
    return headers.Error(name, "this header is set by the exporter itself");
  }
  return absl::OkStatus();
}

absl::Status CheckHeaderValue(const ConfigNode& headers, const std::string& name,
                              const std::string& value) {
  for (char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') {
      // Never echo the value: it may be a credential.
      return headers.Error(name, "header value must not contain line breaks");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<OtlpConfig> ParseOtlp(const ConfigNode& node) {
  if (!node.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Path(), ": must be a map with at least `endpoint`"));
  }
  RETURN_IF_ERROR(node.CheckKeys({"endpoint", "protocol", "headers", "headers_env", "sample_rate",
                                  "max_queue", "max_batch", "flush_interval", "timeout",
                                  "retry_max_elapsed"}));
  OtlpConfig c;
  ASSIGN_OR_RETURN(std::string protocol, node.GetString("protocol", "grpc"));
  if (protocol == "grpc") {
    c.protocol = OtlpProtocol::kGrpc;
  } else if (protocol == "http" || protocol == "http/protobuf") {
    c.protocol = OtlpProtocol::kHttp;
  } else {
    return node.Error("protocol", absl::StrCat("must be grpc or http, got \"", protocol, "\""));
  }

  ASSIGN_OR_RETURN(c.endpoint, node.GetString("endpoint", ""));
  c.endpoint = std::string(absl::StripAsciiWhitespace(c.endpoint));
  if (c.endpoint.empty()) {
    return node.Error("endpoint", protocol == "grpc" ? "is required, e.g. 127.0.0.1:4317"
                                                     : "is required, e.g. http://127.0.0.1:4318");
  }
  for (char ch : c.endpoint) {
    if (absl::ascii_isspace(static_cast<unsigned char>(ch))) {
      return node.Error("endpoint", "must not contain spaces");
    }
  }
  const bool has_scheme =
      absl::StartsWith(c.endpoint, "http://") || absl::StartsWith(c.endpoint, "https://");
  if (c.protocol == OtlpProtocol::kHttp && !has_scheme) {
    return node.Error("endpoint",
                      absl::StrCat("must be a URL like http://host:4318 when protocol is http, "
                                   "got \"",
                                   c.endpoint, "\""));
  }
  if (c.protocol == OtlpProtocol::kGrpc && !has_scheme &&
      absl::StrContains(c.endpoint, "/v1/traces")) {
    return node.Error("endpoint",
                      "looks like an OTLP/HTTP URL; use host:port for grpc or set protocol: http");
  }

  ConfigNode headers = node.Child("headers");
  if (headers.IsDefined()) {
    if (!headers.IsMap()) return node.Error("headers", "must be a map of header: value");
    for (const std::string& name : headers.Keys()) {
      RETURN_IF_ERROR(CheckHeaderName(headers, name));
      ASSIGN_OR_RETURN(std::string value, headers.GetString(name, ""));
      RETURN_IF_ERROR(CheckHeaderValue(headers, name, value));
      c.headers.emplace_back(absl::AsciiStrToLower(name), std::move(value));
    }
  }
  ConfigNode headers_env = node.Child("headers_env");
  if (headers_env.IsDefined()) {
    if (!headers_env.IsMap()) {
      return node.Error("headers_env", "must be a map of header: ENVIRONMENT_VARIABLE");
    }
    for (const std::string& name : headers_env.Keys()) {
      RETURN_IF_ERROR(CheckHeaderName(headers_env, name));
      ASSIGN_OR_RETURN(std::string var, headers_env.GetString(name, ""));
      const char* value = var.empty() ? nullptr : std::getenv(var.c_str());
      if (value == nullptr || *value == '\0') {
        return headers_env.Error(
            name, absl::StrCat("environment variable \"", var, "\" is not set or empty"));
      }
      RETURN_IF_ERROR(CheckHeaderValue(headers_env, name, value));
      c.headers.emplace_back(absl::AsciiStrToLower(name), value);
    }
  }
  for (size_t i = 0; i < c.headers.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (c.headers[i].first == c.headers[j].first) {
        return node.Error("headers", absl::StrCat("header \"", c.headers[i].first,
                                                  "\" is set twice (headers and headers_env)"));
      }
    }
  }

  ASSIGN_OR_RETURN(c.sample_rate, node.GetDouble("sample_rate", c.sample_rate, 0.0, 1.0));
  ASSIGN_OR_RETURN(c.max_queue, node.GetInt("max_queue", c.max_queue, 1, 10'000'000));
  ASSIGN_OR_RETURN(c.max_batch, node.GetInt("max_batch", c.max_batch, 1, 100'000));
  if (c.max_batch > c.max_queue) {
    return node.Error("max_batch", absl::StrCat("must be at most max_queue (", c.max_queue,
                                                "), got ", c.max_batch));
  }
  ASSIGN_OR_RETURN(c.flush_interval, node.GetDuration("flush_interval", c.flush_interval));
  if (c.flush_interval <= absl::ZeroDuration()) {
    return node.Error("flush_interval", "must be a positive duration like 2s");
  }
  ASSIGN_OR_RETURN(c.timeout, node.GetDuration("timeout", c.timeout));
  if (c.timeout <= absl::ZeroDuration()) {
    return node.Error("timeout", "must be a positive duration like 5s");
  }
  ASSIGN_OR_RETURN(c.retry_max_elapsed,
                   node.GetDuration("retry_max_elapsed", c.retry_max_elapsed));
  if (c.retry_max_elapsed < absl::ZeroDuration()) {
    return node.Error("retry_max_elapsed", "must be a duration like 30s, or 0 for no retries");
  }
  return c;
}

}  // namespace

absl::StatusOr<TelemetryConfig> ParseTelemetryConfig(const ConfigNode& section) {
  TelemetryConfig config;
  config.service_version = UNDERSTUDY_VERSION;
  if (!section.IsDefined()) return config;
  if (!section.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(section.Path(), ": must be a map"));
  }
  RETURN_IF_ERROR(section.CheckKeys({"service_name", "otlp"}));
  ASSIGN_OR_RETURN(config.service_name, section.GetString("service_name", config.service_name));
  if (config.service_name.empty()) return section.Error("service_name", "must not be empty");
  ConfigNode otlp = section.Child("otlp");
  if (!otlp.IsDefined()) return config;
  ASSIGN_OR_RETURN(config.otlp, ParseOtlp(otlp));
  config.enabled = true;
  return config;
}

}  // namespace understudy::telemetry
