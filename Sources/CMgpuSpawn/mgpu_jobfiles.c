// Files in a job's folder, opened the way a root process must open them: relative to a directory descriptor, never
// through a symbolic link, never blocking on a FIFO, and only when the file is a regular file of the expected owner
// with a single link. Used by the per-job supervisor (C) and by the agent (Swift) alike, so that nothing a job's
// owner could put into a job folder (a link to /etc/shadow, a FIFO, /dev/zero, a hard link) changes what root reads
// or writes.
#define _GNU_SOURCE
#include "mgpu_spawn.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

// The checks every job file must pass: regular, owned by `owner`, one link, not writable by others.
static int acceptable_stat(const struct stat *st, uid_t owner) {
    if (!S_ISREG(st->st_mode)) return 0;
    if (st->st_uid != owner || st->st_nlink != 1) return 0;
    if (st->st_mode & (S_IWGRP | S_IWOTH)) return 0;
    return 1;
}

static int acceptable(int fd, uid_t owner) {
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    return acceptable_stat(&st, owner);
}

int mgpu_open_beneath(int dirfd, const char *name, int flags, unsigned owner) {
    if (!name || !*name || strchr(name, '/')) { errno = EINVAL; return -1; }
    // O_TRUNC only once the file passed the checks: a hard link to another file must not be emptied first.
    int fd = openat(dirfd, name, (flags & ~O_TRUNC) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) return -1;
    if (!acceptable(fd, (uid_t)owner)) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    if ((flags & O_TRUNC) && ftruncate(fd, 0) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    // Regular files never block; clear O_NONBLOCK so a job that inherits the descriptor sees a plain file.
    int status = fcntl(fd, F_GETFL);
    if (status >= 0) fcntl(fd, F_SETFL, status & ~O_NONBLOCK);
    return fd;
}

int mgpu_private_dir(int fd, unsigned owner) {
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    return S_ISDIR(st.st_mode) && st.st_uid == (uid_t)owner && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

int mgpu_open_dir_beneath(int dirfd, const char *name, unsigned owner) {
    if (!name || !*name || strchr(name, '/')) { errno = EINVAL; return -1; }
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    if (!mgpu_private_dir(fd, owner)) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

int mgpu_open_job_file(int rootfd, const char *job, const char *name, int flags, unsigned owner) {
    int dir = mgpu_open_dir_beneath(rootfd, job, owner);
    if (dir < 0) return -1;
    int fd = mgpu_open_beneath(dir, name, flags, owner);
    int saved = errno;
    close(dir);
    errno = saved;
    return fd;
}

long long mgpu_job_file_size(int rootfd, const char *job, const char *name, unsigned owner) {
    if (!name || !*name || strchr(name, '/')) { errno = EINVAL; return -1; }
    int dir = mgpu_open_dir_beneath(rootfd, job, owner);
    if (dir < 0) return -1;
    // The entry itself (a link is not followed, a FIFO not opened), checked as an opened file would be.
    struct stat st;
    int found = fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    int saved = errno;
    close(dir);
    if (!found) { errno = saved; return -1; }
    if (!acceptable_stat(&st, (uid_t)owner)) { errno = EPERM; return -1; }
    return (long long)st.st_size;
}

int mgpu_write_file_beneath(int dirfd, const char *name, const void *bytes, unsigned long length, unsigned owner) {
    int fd = mgpu_open_beneath(dirfd, name, O_WRONLY | O_CREAT, owner);
    if (fd < 0) return -1;
    struct stat st;
    int rc = mgpu_write_all(fd, bytes, length);
    if (rc == 0 && fstat(fd, &st) != 0) rc = -1;
    if (rc == 0 && st.st_size > (off_t)length && ftruncate(fd, (off_t)length) != 0) rc = -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

long mgpu_read_at(int fd, void *buffer, unsigned long length, long long offset) {
    unsigned long done = 0;
    while (done < length) {
        ssize_t n = pread(fd, (char *)buffer + done, length - done, (off_t)(offset + (long long)done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return done > 0 ? (long)done : -1;
        if (n == 0) break;
        done += (unsigned long)n;
    }
    return (long)done;
}

int mgpu_write_all(int fd, const void *buffer, unsigned long length) {
    const char *p = buffer;
    while (length > 0) {
        ssize_t n = write(fd, p, length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        length -= (unsigned long)n;
    }
    return 0;
}

int mgpu_replace_file_at(int dirfd, const char *name, const void *bytes, unsigned long length) {
    char tmp[300];
    if (strlen(name) > 250) { errno = ENAMETOOLONG; return -1; }
    strcpy(tmp, name);
    strcat(tmp, ".tmp");
    unlinkat(dirfd, tmp, 0);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    int rc = mgpu_write_all(fd, bytes, length);
    int saved = errno;
    close(fd);
    if (rc != 0) { unlinkat(dirfd, tmp, 0); errno = saved; return -1; }
    return renameat(dirfd, tmp, dirfd, name);
}

static void record_attribute(char *attr, size_t size, const char *name) { snprintf(attr, size, "user.mgpu.%s", name); }

int mgpu_write_record(int dirfd, const char *name, const void *bytes, unsigned long length) {
    char attr[300];
    if (strlen(name) > 250) { errno = ENAMETOOLONG; return -1; }
    record_attribute(attr, sizeof attr, name);
    if (fsetxattr(dirfd, attr, bytes, length, 0) == 0) return 0;
    // No user attributes here (or no room for this one): the file, written whole and renamed into place.
    return mgpu_replace_file_at(dirfd, name, bytes, length);
}

long mgpu_read_record(int rootfd, const char *job, const char *name, void *buffer, unsigned long size, unsigned owner) {
    char attr[300];
    if (!name || !*name || strchr(name, '/') || strlen(name) > 250) { errno = EINVAL; return -1; }
    int dir = mgpu_open_dir_beneath(rootfd, job, owner);
    if (dir < 0) return -1;
    record_attribute(attr, sizeof attr, name);
    long n = (long)fgetxattr(dir, attr, buffer, size);
    if (n < 0 && errno != ERANGE) {
        // Not kept as an attribute: the file (a file system without user attributes; a supervisor of mgpu 0.2.0 or before).
        int fd = mgpu_open_beneath(dir, name, O_RDONLY, owner);
        n = fd < 0 ? -1 : mgpu_read_at(fd, buffer, size, 0);
        int saved = errno;
        if (fd >= 0) close(fd);
        errno = saved;
    }
    int saved = errno;
    close(dir);
    errno = saved;
    return n;
}

int mgpu_remove_tree(int parentfd, const char *name) {
    int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        // Not a directory (or a link to one): the entry itself goes, never what it points to.
        if (errno == ENOTDIR || errno == ELOOP) return unlinkat(parentfd, name, 0);
        return errno == ENOENT ? 0 : -1;
    }
    DIR *dir = fdopendir(fd);
    if (!dir) { close(fd); return -1; }
    struct dirent *entry;
    int rc = 0;
    while ((entry = readdir(dir)) != NULL) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        int is_dir = entry->d_type == DT_DIR;
        if (entry->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        }
        if (is_dir) {
            if (mgpu_remove_tree(fd, entry->d_name) != 0) rc = -1;
        } else if (unlinkat(fd, entry->d_name, 0) != 0 && errno != ENOENT) {
            rc = -1;
        }
    }
    closedir(dir);
    if (unlinkat(parentfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) rc = -1;
    return rc;
}

// A finished job's folder's reusable files kept for the next job: a new folder `spare` (in the same parent) gets the
// files only the agent and the supervisor ever open (work.json, command, workdir, environ), which the next job
// overwrites in place; the rest of the old folder is removed. Creating files is the costly part of a job's start on
// ext4 (it scans past recently deleted inodes for each new one). The folder itself is new, so a descriptor of the old
// one (a supervisor that outlived its agent) can never reach a later job; the files a job's processes get descriptors
// to (stdout, stderr, stdin) and the supervisor's (pid, exit) are not passed on. Returns 0 when `spare` is ready; -1
// otherwise (the caller removes whatever is left); the old folder is gone either way.
int mgpu_recycle_dir(int parentfd, const char *name, const char *spare) {
    static const char *keep[] = {"work.json", "command", "workdir", "environ"};
    int rc = mkdirat(parentfd, spare, 0700) == 0 ? 0 : -1;
    int from = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int to = rc == 0 ? openat(parentfd, spare, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (from < 0 || to < 0) rc = -1;
    for (unsigned i = 0; rc == 0 && i < sizeof keep / sizeof keep[0]; i++) {
        struct stat st;
        if (fstatat(from, keep[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) continue;   // not written (a job refused before its start): nothing to keep
            rc = -1;
            break;
        }
        if (!S_ISREG(st.st_mode) || st.st_nlink != 1) { rc = -1; break; }
        if (renameat(from, keep[i], to, keep[i]) != 0) rc = -1;
    }
    if (from >= 0) close(from);
    if (to >= 0) close(to);
    if (mgpu_remove_tree(parentfd, name) != 0) rc = -1;
    return rc;
}
