// Fuzzes configuration loading: YAML text → ConfigNode → SidecarConfig
// (sidecar/config.h), the path every section parser takes at startup.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config_node.h"
#include "sidecar/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<understudy::ConfigNode> root = understudy::ConfigNode::Parse(yaml, "fuzz.yaml");
  if (!root.ok()) return 0;
  (void)understudy::sidecar::ParseSidecarConfig(*root);
  return 0;
}
