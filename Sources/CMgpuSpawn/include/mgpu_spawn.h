#ifndef MGPU_SPAWN_H
#define MGPU_SPAWN_H
#include <spawn.h>

/// Closes every file descriptor >= `from` in the child (glibc >= 2.34); returns non-zero when unsupported.
int mgpu_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);


/// The per-job supervisor (mgpu_supervise.c): `argv` holds JOBDIR GRACE [options]. Returns only on bad arguments.
int mgpu_supervise_main(int argc, char **argv);

#endif

#ifndef MGPU_PTY_H
#define MGPU_PTY_H
#include <stddef.h>
/// Opens a pseudo-terminal pair's master side (close-on-exec) with the given window size and the slave's echo
/// off (the client's terminal echoes). Writes the slave's path into `name`. Returns the master fd, or -1.
int mgpu_open_pty(char *name, size_t length, int rows, int columns);
#endif

/// The terminal size of `fd`; returns 0 on success.
int mgpu_terminal_size(int fd, int *rows, int *columns);

/// A pidfd for `pid` (Linux >= 5.3): readable once the process has exited, for any process (not only children).
/// Returns -1 where unsupported.
int mgpu_pidfd_open(int pid);
