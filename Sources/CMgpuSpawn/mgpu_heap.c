// Returning freed heap memory to the system (the master, after bursts): glibc's malloc_trim, which Swift's Glibc
// module does not export.
#include "mgpu_spawn.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int mgpu_trim_heap(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int mgpu_limit_arenas(int arenas) {
#if defined(__GLIBC__)
    return mallopt(M_ARENA_MAX, arenas);
#else
    (void)arenas;
    return 0;
#endif
}
