// mgpu-supervise: the per-job supervisor as its own small program, installed beside `mgpu`. The agent starts one per
// job (`mgpu-supervise _supervise JOBDIR GRACE ...`, the same arguments as `mgpu _supervise`); exec'ing this instead of
// the whole mgpu binary is what a job start costs in loading. The work is CMgpuSpawn/mgpu_supervise.c's (its
// constructor takes over for `_supervise` before main runs); main is reached only for other arguments.
#include <stdio.h>
#include <string.h>
#include "mgpu_spawn.h"

int main(int argc, char **argv) {
    // What this supervisor can do beyond 0.2.0's, one word a line: the agent asks once when it starts, and passes
    // only flags the supervisor beside it knows (a 0.2.0 one answers this with its usage and status 2).
    if (argc == 2 && !strcmp(argv[1], "--features")) {
        printf("attr-records\n");
        return 0;
    }
    fprintf(stderr, "usage: mgpu-supervise _supervise JOBDIR GRACE [--time S] [--stdin] [--tty ROWS COLS] [--user NAME] [--attr-records] (started by mgpu node, one per job)\n");
    return argc > 0 ? 2 : 2;
}
