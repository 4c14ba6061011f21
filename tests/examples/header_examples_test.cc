// Every `Example:` block of a public header is compiled into this test
// (tests/examples/extract_examples.cc); building it is the main check. At
// run time the test checks that each listed header's examples were all
// extracted: the count of "// Example" lines in the header as it is now
// must equal the count that was compiled.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/examples/header_examples.h"

namespace understudy::testing {
namespace {

int CountExampleLines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("// Example", 0) == 0) ++n;
  }
  return n;
}

// Each header's examples were all compiled, and at least one header has some.
TEST(HeaderExamplesTest, EveryExampleBlockOfEveryListedHeaderIsCompiled) {
  ASSERT_FALSE(kHeaderExamples.empty());
  for (const HeaderExamples& h : kHeaderExamples) {
    const std::string path = std::string(UNDERSTUDY_SOURCE_DIR) + "/" + h.header;
    EXPECT_GT(h.blocks, 0) << h.header;
    EXPECT_EQ(CountExampleLines(path), h.blocks) << h.header;
  }
}

// Every product header that has an example is on the list in
// tests/examples/CMakeLists.txt (a new one cannot be left out unnoticed).
TEST(HeaderExamplesTest, ListCoversEveryProductHeaderWithAnExample) {
  const std::filesystem::path root(UNDERSTUDY_SOURCE_DIR);
  int seen = 0;
  for (const char* folder : {"common", "encoding", "compare", "translate", "rollout", "drift",
                             "storage", "shadow", "telemetry", "metrics", "report", "sidecar",
                             "tools", "cli"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root / folder)) {
      if (entry.path().extension() != ".h" || CountExampleLines(entry.path().string()) == 0) {
        continue;
      }
      ++seen;
      const std::string relative = std::filesystem::relative(entry.path(), root).string();
      bool listed = false;
      for (const HeaderExamples& h : kHeaderExamples) listed |= relative == h.header;
      EXPECT_TRUE(listed) << relative << " has an Example block but is not compiled";
    }
  }
  EXPECT_EQ(seen, static_cast<int>(kHeaderExamples.size()));
}

}  // namespace
}  // namespace understudy::testing
