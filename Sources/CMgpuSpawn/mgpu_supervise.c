// The per-job supervisor, in C: `mgpu _supervise JOBDIR GRACE [--time S] [--stdin] [--tty ROWS COLS] [--user NAME]`.
//
// The agent starts one per job part, in a session of its own. It runs `/bin/sh -c "$(cat JOBDIR/command)"` in
// JOBDIR/workdir (or /tmp, saying so in the job's stderr, as Slurm does), in a new session, so that the job leads
// its own process group, with the supervisor's environment. Output is appended to JOBDIR/stdout and
// JOBDIR/stderr; with --tty the job runs under a pseudo-terminal and everything goes to JOBDIR/stdout. With
// --stdin, what the agent appends to JOBDIR/stdin is fed to the job's stdin, which closes (for a terminal: Ctrl-D)
// once JOBDIR/stdin.eof exists and all of it was fed. SIGTERM, SIGINT or SIGHUP to the supervisor, or the time
// limit, terminate the job: SIGTERM to its whole group, SIGKILL after the grace period. When the job's main process
// ends, whatever is left of its group is killed and the status is written atomically to JOBDIR/exit ("code N",
// "signal N", after "timeout " when the time limit stopped it, or "error ..."). It outlives the agent, which
// re-adopts it by reading JOBDIR. JOBDIR/pid holds "SUPERVISOR_PID JOB_PID" once the job started.
//
// With --user (a root agent running a job for its owner) the job's shell is started through `mgpu _become NAME
// /bin/sh -c ...`, which sets the account's group, supplementary groups and user id (setgid, initgroups, setuid,
// in that order, and checks that root cannot be regained) and HOME/USER/LOGNAME, then execs the shell. The
// supervisor itself stays root: it writes JOBDIR/pid and JOBDIR/exit and signals the job's group.
//
// Why C, and why it runs from a constructor: one supervisor starts per job, so its start-up cost is paid per job.
// The mgpu executable carries the Swift runtime, Foundation and the server stack; starting them costs about
// 4 ms of CPU, three times what running `/bin/sh -c true` costs. The constructor below runs before any of that,
// as soon as the dynamic loader is done, and never returns for `_supervise`; everything it calls is plain POSIX.
#define _GNU_SOURCE
#include "mgpu_spawn.h"
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_all(int fd, const char *text, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, text, length);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        text += n;
        length -= (size_t)n;
    }
}

// The whole (small) file as a NUL-terminated string, or NULL.
static char *read_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t size = 0, capacity = 4096;
    char *data = malloc(capacity + 1);
    while (data) {
        if (size == capacity) {
            char *bigger = realloc(data, capacity * 2 + 1);
            if (!bigger) { free(data); data = NULL; break; }
            data = bigger;
            capacity *= 2;
        }
        ssize_t n = read(fd, data + size, capacity - size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size += (size_t)n;
    }
    close(fd);
    if (data) data[size] = 0;
    return data;
}

// Written to PATH.tmp and renamed over PATH: readers see all of it or nothing. (No fsync: it guards against a
// process dying, not the machine; after a machine crash the job is gone anyway.)
static void write_atomically(const char *dir, const char *name, const char *text) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    write_all(fd, text, strlen(text));
    close(fd);
    rename(tmp, path);
}

static void finish(const char *dir, const char *line) __attribute__((noreturn));
static void finish(const char *dir, const char *line) {
    char text[4200];
    snprintf(text, sizeof text, "%s\n", line);
    write_atomically(dir, "exit", text);
    _exit(0);
}

// Copies what the job wrote to its terminal into its output file.
static void pump(int from, int to) {
    char buffer[65536];
    for (;;) {
        ssize_t n = read(from, buffer, sizeof buffer);
        if (n <= 0) return;
        write_all(to, buffer, (size_t)n);
    }
}

// Feeds JOBDIR/stdin to the job without ever blocking: what the job does not take yet is offered again.
struct feeder {
    char path[4096], eof_path[4096];
    int target, is_terminal, enabled;
    off_t offset;
    char pending[65536];
    size_t pending_start, pending_end;
};

static void feed(struct feeder *f) {
    if (!f->enabled || f->target < 0) return;
    if (f->pending_start == f->pending_end) {
        f->pending_start = f->pending_end = 0;
        int fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = pread(fd, f->pending, sizeof f->pending, f->offset);
            close(fd);
            if (n > 0) { f->pending_end = (size_t)n; f->offset += n; }
        }
    }
    while (f->pending_start < f->pending_end) {
        ssize_t w = write(f->target, f->pending + f->pending_start, f->pending_end - f->pending_start);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            f->enabled = 0;  // the job closed its stdin
            return;
        }
        f->pending_start += (size_t)w;
    }
    if (access(f->eof_path, F_OK) == 0) {
        struct stat st;
        if (stat(f->path, &st) != 0 || st.st_size <= f->offset) {
            if (f->is_terminal) {
                char eot = 4;
                (void)!write(f->target, &eot, 1);
            } else {
                close(f->target);
                f->target = -1;
            }
            f->enabled = 0;
        }
    }
}

static int usage(void) {
    const char *text = "usage: mgpu _supervise JOBDIR GRACE_SECONDS [--time S] [--stdin] [--tty ROWS COLS] [--user NAME]\n";
    write_all(2, text, strlen(text));
    return 2;
}

int mgpu_supervise_main(int argc, char **argv) {
    if (argc < 2) return usage();
    const char *dir = argv[0];
    char *end = NULL;
    double grace = strtod(argv[1], &end);
    if (end == argv[1] || *end) return usage();
    double time_limit = -1;
    int want_stdin = 0, tty_rows = 0, tty_columns = 0;
    const char *user = NULL;
    for (int i = 2; i < argc;) {
        if (!strcmp(argv[i], "--time") && i + 1 < argc) { time_limit = strtod(argv[i + 1], NULL); i += 2; }
        else if (!strcmp(argv[i], "--stdin")) { want_stdin = 1; i += 1; }
        else if (!strcmp(argv[i], "--user") && i + 1 < argc) { user = argv[i + 1]; i += 2; }
        else if (!strcmp(argv[i], "--tty") && i + 2 < argc) {
            tty_rows = atoi(argv[i + 1]); tty_columns = atoi(argv[i + 2]);
            if (tty_rows <= 0) tty_rows = 24;
            if (tty_columns <= 0) tty_columns = 80;
            i += 3;
        } else return usage();
    }

    sigset_t watched;
    sigemptyset(&watched);
    int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE};
    for (size_t i = 0; i < sizeof signals / sizeof *signals; i++) sigaddset(&watched, signals[i]);
    sigprocmask(SIG_BLOCK, &watched, NULL);

    char path[4200], line[4400];
    snprintf(path, sizeof path, "%s/command", dir);
    char *command = read_file(path);
    if (!command) { snprintf(line, sizeof line, "error cannot read %s/command", dir); finish(dir, line); }
    snprintf(path, sizeof path, "%s/workdir", dir);
    char *workdir = read_file(path);
    if (workdir && chdir(workdir) != 0) {
        int error = errno;
        snprintf(path, sizeof path, "%s/stderr", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            snprintf(line, sizeof line, "mgpu: cannot enter working directory %s: %s; running in /tmp\n", workdir, strerror(error));
            write_all(fd, line, strlen(line));
            close(fd);
        }
        (void)!chdir("/tmp");
    }

    // The job's standard streams.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int pty_master = -1, stdin_read = -1, stdin_write = -1;
    if (tty_rows > 0) {
        char name[128];
        pty_master = mgpu_open_pty(name, sizeof name, tty_rows, tty_columns);
        if (pty_master < 0) finish(dir, "error cannot open a pseudo-terminal");
        // Opened first in the new session, the terminal becomes the job's controlling terminal.
        for (int fd = 0; fd <= 2; fd++) posix_spawn_file_actions_addopen(&actions, fd, name, O_RDWR, 0600);
        fcntl(pty_master, F_SETFL, fcntl(pty_master, F_GETFL) | O_NONBLOCK);
    } else {
        if (want_stdin) {
            int fds[2];
            if (pipe(fds) != 0) finish(dir, "error cannot make a pipe for stdin");
            fcntl(fds[1], F_SETFD, FD_CLOEXEC);
            fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
            stdin_read = fds[0];
            stdin_write = fds[1];
            posix_spawn_file_actions_adddup2(&actions, stdin_read, 0);
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        }
        snprintf(path, sizeof path, "%s/stdout", dir);
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        snprintf(path, sizeof path, "%s/stderr", dir);
        posix_spawn_file_actions_addopen(&actions, 2, path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    }
    // The job gets its three streams and nothing else of ours.
    mgpu_spawn_file_actions_addclosefrom(&actions, 3);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty, defaults;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attr, &empty);
    sigemptyset(&defaults);
    int reset[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof reset / sizeof *reset; i++) sigaddset(&defaults, reset[i]);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);

    char *shell_argv[] = {"/bin/sh", "-c", command, NULL};
    char *become_argv[] = {"mgpu", "_become", (char *)user, "/bin/sh", "-c", command, NULL};
    const char *program = user ? "/proc/self/exe" : "/bin/sh";
    pid_t job = 0;
    int rc = posix_spawn(&job, program, &actions, &attr, user ? become_argv : shell_argv, environ);
    if (rc != 0) {
        snprintf(line, sizeof line, "error cannot start %s: %s", program, strerror(rc));
        finish(dir, line);
    }
    if (stdin_read >= 0) close(stdin_read);
    snprintf(line, sizeof line, "%d %d\n", (int)getpid(), (int)job);
    write_atomically(dir, "pid", line);

    int interactive = want_stdin || pty_master >= 0;
    double started = monotonic_seconds(), kill_deadline = -1;
    int timed_out = 0, status = 0, output_fd = -1;
    static struct feeder feeder;
    snprintf(feeder.path, sizeof feeder.path, "%s/stdin", dir);
    snprintf(feeder.eof_path, sizeof feeder.eof_path, "%s/stdin.eof", dir);
    feeder.target = pty_master >= 0 ? pty_master : stdin_write;
    feeder.is_terminal = pty_master >= 0;
    feeder.enabled = want_stdin;
    if (pty_master >= 0) {
        snprintf(path, sizeof path, "%s/stdout", dir);
        output_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    }

    for (;;) {
        pid_t r;
        do { r = waitpid(job, &status, WNOHANG); } while (r < 0 && errno == EINTR);
        if (r == job) break;
        double now = monotonic_seconds();
        // Wait for a signal (the job's end, a termination request) or, when interactive, at most 20 ms.
        double wait = interactive ? 0.02 : 1.0;
        if (time_limit >= 0 && kill_deadline < 0) {
            double left = started + time_limit - now;
            if (left < wait) wait = left > 0.001 ? left : 0.001;
        }
        if (kill_deadline >= 0) {
            double left = kill_deadline - now;
            if (left < wait) wait = left > 0.001 ? left : 0.001;
        }
        struct timespec timeout = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        int sig = sigtimedwait(&watched, NULL, &timeout);
        if ((sig == SIGTERM || sig == SIGINT || sig == SIGHUP) && kill_deadline < 0) {
            kill(-job, SIGTERM);
            kill_deadline = monotonic_seconds() + grace;
        }
        if (time_limit >= 0 && kill_deadline < 0 && monotonic_seconds() >= started + time_limit) {
            timed_out = 1;
            kill(-job, SIGTERM);
            kill_deadline = monotonic_seconds() + grace;
        }
        if (kill_deadline >= 0 && kill_deadline < 1e300 && monotonic_seconds() >= kill_deadline) {
            kill(-job, SIGKILL);
            kill_deadline = 1e301;
        }
        if (pty_master >= 0) pump(pty_master, output_fd);
        feed(&feeder);
    }
    if (pty_master >= 0) pump(pty_master, output_fd);
    // The main process is gone: leave nothing of its group behind.
    kill(-job, SIGKILL);
    const char *prefix = timed_out ? "timeout " : "";
    if (WIFSIGNALED(status)) snprintf(line, sizeof line, "%ssignal %d", prefix, WTERMSIG(status));
    else snprintf(line, sizeof line, "%scode %d", prefix, WIFEXITED(status) ? WEXITSTATUS(status) : 255);
    finish(dir, line);
}

// `mgpu _become NAME PROGRAM ARGS...`: run PROGRAM as the Unix account NAME (from root). Exit 126 with one line on
// stderr when the account does not exist or the switch fails; nothing runs then.
static int become_main(int argc, char **argv) {
    char line[512];
    if (argc < 2) {
        const char *text = "usage: mgpu _become NAME PROGRAM [ARGS...]\n";
        write_all(2, text, strlen(text));
        return 2;
    }
    const char *name = argv[0];
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        snprintf(line, sizeof line, "mgpu: no Unix account %s on this node: the job cannot run as its owner\n", name);
        write_all(2, line, strlen(line));
        return 126;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (setgid(gid) != 0 || initgroups(name, gid) != 0 || setuid(uid) != 0) {
        snprintf(line, sizeof line, "mgpu: cannot switch to the Unix account %s: %s\n", name, strerror(errno));
        write_all(2, line, strlen(line));
        return 126;
    }
    if (uid != 0 && (setuid(0) == 0 || geteuid() != uid || getuid() != uid)) {
        snprintf(line, sizeof line, "mgpu: the switch to %s did not drop root\n", name);
        write_all(2, line, strlen(line));
        return 126;
    }
    setenv("HOME", pw->pw_dir, 1);
    setenv("USER", name, 1);
    setenv("LOGNAME", name, 1);
    execv(argv[1], argv + 1);
    snprintf(line, sizeof line, "mgpu: cannot start %s: %s\n", argv[1], strerror(errno));
    write_all(2, line, strlen(line));
    return 127;
}

// glibc calls constructors with (argc, argv, envp). For `_supervise` and `_become` this one never returns.
__attribute__((constructor(101)))
static void mgpu_supervise_hook(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc > 1 && argv && argv[1] && !strcmp(argv[1], "_supervise")) _exit(mgpu_supervise_main(argc - 2, argv + 2));
    if (argc > 1 && argv && argv[1] && !strcmp(argv[1], "_become")) _exit(become_main(argc - 2, argv + 2));
}
