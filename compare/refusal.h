// compare/refusal.h (internal to compare/; other modules use compare.h)
// RefusalSet: CompareOptions::refusal_patterns compiled into one RE2::Set,
// so a window is scanned once for all patterns instead of once per pattern.
//
//   CompareOptions o;
//   RETURN_IF_ERROR(CompileRefusalPatterns(&o));  // fills o.compiled_refusal_set
//   bool refused = o.compiled_refusal_set->Matches(text.substr(0, 1024));
//
// Thread-safe: immutable after Create; Matches may run concurrently.
#ifndef UNDERSTUDY_COMPARE_REFUSAL_H_
#define UNDERSTUDY_COMPARE_REFUSAL_H_

#include <re2/re2.h>
#include <re2/set.h>

#include <memory>
#include <string_view>
#include <vector>

#include "compare/compare.h"

namespace understudy::compare {

class RefusalSet {
 public:
  // Create builds the set from patterns already compiled one by one (they
  // are kept as the fallback). Null when the set does not compile (e.g.
  // over RE2's memory budget); callers then match pattern by pattern.
  static std::unique_ptr<RefusalSet> Create(
      std::shared_ptr<const std::vector<std::unique_ptr<re2::RE2>>> patterns);

  // Matches is true when any pattern matches somewhere in `text` (the
  // same as RE2::PartialMatch with each pattern).
  bool Matches(std::string_view text) const;

  // The patterns the set was built from (to check it still goes with a
  // CompareOptions::compiled_refusals).
  const std::vector<std::unique_ptr<re2::RE2>>* patterns() const { return patterns_.get(); }

 private:
  RefusalSet();
  static RE2::Options MakeOptions();
  re2::RE2::Set set_;
  std::shared_ptr<const std::vector<std::unique_ptr<re2::RE2>>> patterns_;
};

// MatchesAnyPattern is the pattern-by-pattern fallback (and reference).
bool MatchesAnyPattern(std::string_view text,
                       const std::vector<std::unique_ptr<re2::RE2>>& patterns);

}  // namespace understudy::compare

#endif  // UNDERSTUDY_COMPARE_REFUSAL_H_
