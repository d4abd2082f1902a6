// The commit mgpu was built from: scripts/build writes mgpu_commit.h (not in git); other builds say "unknown".
#include "mgpu_spawn.h"

#if __has_include("mgpu_commit.h")
#include "mgpu_commit.h"
#endif
#ifndef MGPU_COMMIT
#define MGPU_COMMIT "unknown"
#endif

const char *mgpu_build_commit(void) { return MGPU_COMMIT; }
