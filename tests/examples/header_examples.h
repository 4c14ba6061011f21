// tests/examples/header_examples.h: what the generated example file
// (extract_examples.cc) compiled, for header_examples_test.cc.
#ifndef UNDERSTUDY_TESTS_EXAMPLES_HEADER_EXAMPLES_H_
#define UNDERSTUDY_TESTS_EXAMPLES_HEADER_EXAMPLES_H_

#include <vector>

namespace understudy::testing {

struct HeaderExamples {
  const char* header;
  int blocks;  // Example blocks compiled from it
};

extern const std::vector<HeaderExamples> kHeaderExamples;

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_EXAMPLES_HEADER_EXAMPLES_H_
