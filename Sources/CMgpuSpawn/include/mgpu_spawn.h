#ifndef MGPU_SPAWN_H
#define MGPU_SPAWN_H
#include <spawn.h>

/// Closes every file descriptor >= `from` in the child (glibc >= 2.34); returns non-zero when unsupported.
int mgpu_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
