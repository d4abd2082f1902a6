#ifndef MGPU_SPAWN_H
#define MGPU_SPAWN_H
#include <spawn.h>
#include <sys/xattr.h>  // getxattr and setxattr for Swift code (Glibc does not export them): job records

/// Closes every file descriptor >= `from` in the child (glibc >= 2.34); returns non-zero when unsupported.
int mgpu_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);


/// The per-job supervisor (mgpu_supervise.c): `argv` holds JOBDIR GRACE [options]. Returns only on bad arguments.
int mgpu_supervise_main(int argc, char **argv);

// Job folder files (mgpu_jobfiles.c): opened relative to a directory descriptor, never through a symbolic link,
// never blocking on a FIFO, and only when the file is a regular file of `owner` with one link and not writable by
// others. They return -1 with errno set otherwise (EPERM for a file of the wrong kind or owner).

/// Opens `name` (no '/') in `dirfd` with `flags` (O_CREAT makes it 0600). Close-on-exec, blocking mode.
int mgpu_open_beneath(int dirfd, const char *name, int flags, unsigned owner);
/// Opens the directory `name` in `dirfd`, not through a link, when it is `owner`'s and writable by no one else.
int mgpu_open_dir_beneath(int dirfd, const char *name, unsigned owner);
/// Whether the open directory `fd` belongs to `owner` and no one else may write it.
int mgpu_private_dir(int fd, unsigned owner);
/// `rootfd`/`job`/`name`, each step checked as above.
int mgpu_open_job_file(int rootfd, const char *job, const char *name, int flags, unsigned owner);
/// The size of `rootfd`/`job`/`name`, or -1 when it is missing or not an acceptable file.
long long mgpu_job_file_size(int rootfd, const char *job, const char *name, unsigned owner);
/// Makes `bytes` the whole content of `name` in `dirfd` (created if missing, checked as above): written over what is
/// there, then cut to its length. Never truncated to zero first: on ext4 that makes close() flush the file at once and
/// frees (on a disk mounted with discard, discards) its blocks, which was most of a job start's cost.
int mgpu_write_file_beneath(int dirfd, const char *name, const void *bytes, unsigned long length, unsigned owner);
/// Reads up to `length` bytes at `offset` (retrying EINTR); the count read, or -1.
long mgpu_read_at(int fd, void *buffer, unsigned long length, long long offset);
/// Writes all of `buffer`; 0, or -1.
int mgpu_write_all(int fd, const void *buffer, unsigned long length);
/// Writes `name`.tmp in `dirfd` (created anew, not through a link) and renames it over `name`: all or nothing.
int mgpu_replace_file_at(int dirfd, const char *name, const void *bytes, unsigned long length);
/// A job's small record (`pid`, `exit`): kept as the extended attribute `user.mgpu.NAME` of the job's folder `dirfd`, set
/// in one call (all or nothing), so a job creates and later deletes no file for it (on ext4 every file deleted makes
/// the next ones created slower for a while); where the file system has no user attributes, the file `name` written
/// as `mgpu_replace_file_at` does. 0, or -1.
int mgpu_write_record(int dirfd, const char *name, const void *bytes, unsigned long length);
/// Reads the record `name` of `rootfd`/`job` (the folder checked as above) into `buffer`: the attribute, else the file
/// (checked as above). The count read, or -1.
long mgpu_read_record(int rootfd, const char *job, const char *name, void *buffer, unsigned long size, unsigned owner);
/// Removes `name` in `parentfd` and everything below it, unlinking links instead of following them.
int mgpu_remove_tree(int parentfd, const char *name);
/// Renames a finished job's folder to `spare` and empties it but for the agent-only files the next job overwrites.
int mgpu_recycle_dir(int parentfd, const char *name, const char *spare);

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

/// The commit this binary was built from (scripts/build), or "unknown".
const char *mgpu_build_commit(void);

/// Gives freed heap memory back to the system (glibc's malloc_trim(0)); 1 when some was, 0 otherwise.
int mgpu_trim_heap(void);

/// Lets glibc's malloc keep at most `arenas` heaps (mallopt M_ARENA_MAX); 1 on success, 0 otherwise. Effective only
/// before a second thread allocates.
int mgpu_limit_arenas(int arenas);
