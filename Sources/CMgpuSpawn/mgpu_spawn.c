// glibc declares posix_spawn_file_actions_addclosefrom_np only under _GNU_SOURCE, which Swift's Glibc
// module does not set; this shim exposes it.
#define _GNU_SOURCE
#include "mgpu_spawn.h"

int mgpu_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
#else
    (void)actions; (void)from;
    return -1;
#endif
}
