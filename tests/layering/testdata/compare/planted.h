// A planted violation: a pure library including the process layer.
#include "sidecar/engine.h"
#include "compare/compare.h"
