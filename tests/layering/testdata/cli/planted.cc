// A planted violation: product code including test code.
#include "tests/support/test_upstream.h"
#include "tools/envoy_driver/envoy_driver.h"
