// The per-job supervisor, in C: `mgpu _supervise JOBDIR GRACE [--time S] [--stdin] [--tty ROWS COLS] [--user NAME]`.
//
// The agent starts one per job part, in a session of its own, with a fixed minimal environment (nothing a user
// controls reaches it). It reads JOBDIR/command, JOBDIR/workdir and JOBDIR/environ (the job's environment, NUL-
// separated), opens the job's standard streams, and forks the job: in the child, a new session, the streams, then
// (with --user) the owner's groups and user id (setgroups, setgid, setuid, checked: root cannot be regained), then
// chdir into the working directory *as the owner*, then execve("/bin/sh", "-c", command) with the job's environment
// and the account's HOME/USER/LOGNAME. If the owner cannot enter the working directory, the job fails with that reason
// ("cannot enter /path: Permission denied"); there is no fallback directory. Loader variables (LD_PRELOAD, ...) thus
// reach only the job itself, running as its owner.
//
// Output is appended to JOBDIR/stdout and JOBDIR/stderr; with --tty the job runs under a pseudo-terminal and
// everything goes to JOBDIR/stdout. With --stdin, what the agent appends to JOBDIR/stdin is fed to the job's stdin,
// which closes (for a terminal: Ctrl-D) once JOBDIR/stdin.eof exists and all of it was fed. SIGTERM, SIGINT or SIGHUP
// to the supervisor, or the time limit, terminate the job: SIGTERM to its whole group, SIGKILL after the grace period.
// When the job's main process ends, whatever is left of it is killed: its group, and every process it started that
// left the group (`setsid`, a daemon's double fork), which the supervisor, a child subreaper, inherits when their
// parents end. Then the status is written atomically to
// JOBDIR/exit ("code N", "signal N", after "timeout " when the time limit stopped it, or "error ..."). It outlives the
// agent, which re-adopts it by reading JOBDIR. JOBDIR/pid holds "SUPERVISOR_PID JOB_PID" once the job started.
//
// The privilege boundary: the supervisor stays root (it signals the job's group and records its end), and the job
// folder is the agent's (0700, writable by no one else). Every file in it is opened relative to the folder's
// descriptor, never through a link, never blocking, and only if it is a regular file of the agent's user with one link
// (mgpu_jobfiles.c). The job gets its three streams as descriptors opened here, and nothing else.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// Largest files the supervisor reads from the job folder (the master's limits are lower).
#define MAX_COMMAND (4 << 20)
#define MAX_ENVIRON (4 << 20)

static double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_all(int fd, const char *text, size_t length) { (void)mgpu_write_all(fd, text, length); }

// The job folder, as a descriptor, and the user that owns it (the agent's).
static int job_dir = -1;
static uid_t folder_owner = 0;

// A file of the job folder, whole, NUL-terminated, at most `max` bytes (else NULL); `length` gets its size.
static char *read_job_file(const char *name, size_t max, size_t *length) {
    int fd = mgpu_open_beneath(job_dir, name, O_RDONLY, folder_owner);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size > max) { close(fd); return NULL; }
    char *data = malloc((size_t)st.st_size + 1);
    long n = data ? mgpu_read_at(fd, data, (unsigned long)st.st_size, 0) : -1;
    close(fd);
    if (n < 0) { free(data); return NULL; }
    data[n] = 0;
    if (length) *length = (size_t)n;
    return data;
}

// With --attr-records (agents after 0.2.0 pass it), `pid` and `exit` are attributes of the job folder
// (mgpu_write_record); without it, files, which is what an agent of 0.2.0 reads: such an agent can start this
// supervisor between the new binaries' installation and its own restart.
static int attribute_records = 0;

// A record of the job folder (an attribute of the folder, else a file renamed into place): readers see all of it or
// nothing. (No fsync: it guards against a process dying, not the machine; after a machine crash the job is gone
// anyway.)
static void write_atomically(const char *name, const char *text) {
    if (attribute_records) (void)mgpu_write_record(job_dir, name, text, strlen(text));
    else (void)mgpu_replace_file_at(job_dir, name, text, strlen(text));
}

static void finish(const char *line) __attribute__((noreturn));
static void finish(const char *line) {
    char text[4200];
    snprintf(text, sizeof text, "%s\n", line);
    write_atomically("exit", text);
    _exit(0);
}

// SIGKILL to one of the supervisor's unreaped children and to the group it leads (if it leads none: no such group,
// since a group's id is its creator's pid and stays reserved while the group lives). 1 when it could be signalled
// (or is gone already), 0 when not (EPERM: under an unprivileged supervisor, a setuid program the job ran).
static int kill_child(pid_t child) {
    if (child <= 1 || child == getpid()) return 0;
    (void)kill(-child, SIGKILL);
    return kill(child, SIGKILL) == 0 || errno == ESRCH;
}

// Kills each of the supervisor's children now: from /proc/self/task/PID/children (read to the end, each pid killed as
// it is read), else from every process's parent in /proc (only when /proc is this pid namespace's). Returns how many
// could be signalled, or -1 when neither can be read.
static int kill_children(void) {
    char path[64], text[4096];
    pid_t self = getpid();
    int signalled = 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)self);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        long pid = 0;
        int digits = 0;
        ssize_t n;
        while ((n = read(fd, text, sizeof text)) > 0 || (n < 0 && errno == EINTR)) {
            for (ssize_t i = 0; i < n; i++) {
                if (text[i] >= '0' && text[i] <= '9') {
                    if (pid < 100000000) pid = pid * 10 + (text[i] - '0');
                    digits = 1;
                } else {
                    if (digits) signalled += kill_child((pid_t)pid);
                    pid = 0;
                    digits = 0;
                }
            }
        }
        if (digits) signalled += kill_child((pid_t)pid);
        close(fd);
        if (n == 0) return signalled;
    }
    char self_link[32], expected[32];
    ssize_t length = readlink("/proc/self", self_link, sizeof self_link - 1);
    snprintf(expected, sizeof expected, "%d", (int)self);
    if (length <= 0 || (self_link[length] = 0, strcmp(self_link, expected) != 0)) return -1;
    DIR *proc = opendir("/proc");
    if (!proc) return -1;
    struct dirent *entry;
    while ((entry = readdir(proc))) {
        if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        int stat_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (stat_fd < 0) continue;
        ssize_t n = read(stat_fd, text, sizeof text - 1);
        close(stat_fd);
        if (n <= 0) continue;
        text[n] = 0;
        char *close_paren = strrchr(text, ')');  // the name may hold spaces and parentheses; the state and ppid follow
        if (!close_paren) continue;
        char state = 0;
        long parent = 0;
        if (sscanf(close_paren + 1, " %c %ld", &state, &parent) == 2 && parent == (long)self) {
            signalled += kill_child((pid_t)strtol(entry->d_name, NULL, 10));
        }
    }
    closedir(proc);
    return signalled;
}

// Reaps at most `max` of the supervisor's children that have ended, other than `keep` (the job's main process while
// it runs: its end is noticed, not reaped, by the main loop). Returns -1 once it has no child at all.
static int reap_children(pid_t keep, int max) {
    for (int i = 0; i < max; i++) {
        siginfo_t ended;
        memset(&ended, 0, sizeof ended);
        if (waitid(P_ALL, 0, &ended, WEXITED | WNOHANG | WNOWAIT) < 0) return errno == ECHILD ? -1 : 0;
        if (ended.si_pid == 0 || ended.si_pid == keep) return 0;
        int status;
        (void)waitpid(ended.si_pid, &status, WNOHANG);
    }
    return 0;
}

// Kills what the job left behind and waits until it is gone: at most 10 s (a process stuck in the kernel, say in a
// GPU driver's teardown, is left to end by itself), and no longer than it takes to find only children it may not
// signal. Each round kills every child still there (and the group each leads), then reaps a bounded number of those
// that ended: a child is never reaped between being listed and being signalled, so its pid cannot have been reused.
static void kill_leftovers(void) {
    double deadline = monotonic_seconds() + 10;
    sigset_t child_ended;
    sigemptyset(&child_ended);
    sigaddset(&child_ended, SIGCHLD);   // blocked since the start: waited for here
    for (;;) {
        if (reap_children(0, 4096) < 0) return;   // nothing is left
        int signalled = kill_children();
        if (signalled < 0) return;                 // no list to go by
        if (signalled == 0) {                      // only children it may not signal
            (void)reap_children(0, 4096);
            return;
        }
        double left = deadline - monotonic_seconds();
        if (left <= 0) return;
        if (left > 0.05) left = 0.05;
        struct timespec wait = {0, (long)(left * 1e9)};
        (void)sigtimedwait(&child_ended, NULL, &wait);
    }
}

// Copies what the job wrote to its terminal into its output file, at most 1 MiB a call: a job (or what is left of it)
// writing faster than this copies cannot keep the supervisor from its signals, its time limit or the job's end. (Once
// the writers are gone the terminal holds far less than that.)
static void pump(int from, int to) {
    char buffer[65536];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(from, buffer, sizeof buffer);
        if (n <= 0) return;
        write_all(to, buffer, (size_t)n);
    }
}

// Feeds JOBDIR/stdin to the job without ever blocking: what the job does not take yet is offered again.
struct feeder {
    int source;  // JOBDIR/stdin, opened once
    int target, is_terminal, enabled;
    off_t offset;
    char pending[65536];
    size_t pending_start, pending_end;
};

static void feed(struct feeder *f) {
    if (!f->enabled || f->target < 0 || f->source < 0) return;
    if (f->pending_start == f->pending_end) {
        f->pending_start = f->pending_end = 0;
        long n = mgpu_read_at(f->source, f->pending, sizeof f->pending, f->offset);
        if (n > 0) { f->pending_end = (size_t)n; f->offset += n; }
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
    struct stat eof, st;
    if (fstatat(job_dir, "stdin.eof", &eof, AT_SYMLINK_NOFOLLOW) == 0) {
        if (fstat(f->source, &st) != 0 || st.st_size <= f->offset) {
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
    const char *text = "usage: mgpu _supervise JOBDIR GRACE_SECONDS [--time S] [--stdin] [--tty ROWS COLS] [--user NAME] [--attr-records]\n";
    write_all(2, text, strlen(text));
    return 2;
}

// The account a root supervisor runs the job as.
struct account {
    const char *name;
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int group_count;
    char *home;
};

// In the forked child: says why the job cannot start (to the supervisor through `report`, and to the job's stderr),
// then exits. Only async-signal-safe calls from here on.
static void child_fail(int report, const char *what, const char *detail, int error) __attribute__((noreturn));
static void child_fail(int report, const char *what, const char *detail, int error) {
    const char *reason = strerror(error);
    const char *parts[] = {what, detail ? " " : "", detail ? detail : "", ": ", reason};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) write_all(report, parts[i], strlen(parts[i]));
    write_all(2, "mgpu: ", 6);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) write_all(2, parts[i], strlen(parts[i]));
    write_all(2, "\n", 1);
    _exit(127);
}

// The job's environment: the submitter's (from JOBDIR/environ), with the account's HOME, USER and LOGNAME when it
// runs as another account.
static char **job_environment(char *text, size_t length, const struct account *who) {
    size_t count = 0;
    for (size_t i = 0; i < length; i++) if (text[i] == 0) count++;
    char **env = calloc(count + 5, sizeof *env);
    if (!env) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < length;) {
        char *entry = text + i;
        size_t len = strlen(entry);
        i += len + 1;
        if (!len || !strchr(entry, '=')) continue;
        if (who && (!strncmp(entry, "HOME=", 5) || !strncmp(entry, "USER=", 5) || !strncmp(entry, "LOGNAME=", 8))) continue;
        env[n++] = entry;
    }
    if (who) {
        static char home[4200], user[300], logname[300];
        snprintf(home, sizeof home, "HOME=%s", who->home);
        snprintf(user, sizeof user, "USER=%s", who->name);
        snprintf(logname, sizeof logname, "LOGNAME=%s", who->name);
        env[n++] = home;
        env[n++] = user;
        env[n++] = logname;
    }
    env[n] = NULL;
    return env;
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
        else if (!strcmp(argv[i], "--attr-records")) { attribute_records = 1; i += 1; }
        else if (!strcmp(argv[i], "--user") && i + 1 < argc) { user = argv[i + 1]; i += 2; }
        else if (!strcmp(argv[i], "--tty") && i + 2 < argc) {
            tty_rows = atoi(argv[i + 1]); tty_columns = atoi(argv[i + 2]);
            if (tty_rows <= 0) tty_rows = 24;
            if (tty_columns <= 0) tty_columns = 80;
            i += 3;
        } else return usage();
    }

    // Processes of the job that leave its group are re-parented to the supervisor when their parents end, so that
    // none outlives the job (kill_leftovers).
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

    sigset_t watched;
    sigemptyset(&watched);
    int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE};
    for (size_t i = 0; i < sizeof signals / sizeof *signals; i++) sigaddset(&watched, signals[i]);
    sigprocmask(SIG_BLOCK, &watched, NULL);

    // The folder must be ours and private; otherwise nothing in it can be trusted, not even a place for `exit`.
    folder_owner = geteuid();
    job_dir = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (job_dir < 0 || !mgpu_private_dir(job_dir, folder_owner)) {
        const char *text = "mgpu _supervise: the job folder is missing or not private to this user\n";
        write_all(2, text, strlen(text));
        return 3;
    }

    char line[4400];
    size_t command_length = 0, environ_length = 0;
    char *command = read_job_file("command", MAX_COMMAND, &command_length);
    if (!command) finish("error cannot read the job's command");
    char *workdir = read_job_file("workdir", 4096, NULL);
    if (!workdir || workdir[0] != '/') finish("error the job has no absolute working directory");
    char *environ_text = read_job_file("environ", MAX_ENVIRON, &environ_length);
    if (!environ_text) finish("error cannot read the job's environment");

    struct account who = {0};
    if (user) {
        struct passwd *pw = getpwnam(user);
        if (!pw) {
            snprintf(line, sizeof line, "error no Unix account %s on this node: the job cannot run as its owner", user);
            finish(line);
        }
        who.name = user;
        who.uid = pw->pw_uid;
        who.gid = pw->pw_gid;
        who.home = strdup(pw->pw_dir ? pw->pw_dir : "/");
        int count = 64;
        who.groups = malloc(sizeof(gid_t) * (size_t)count);
        while (who.groups && getgrouplist(user, who.gid, who.groups, &count) < 0) {
            gid_t *bigger = realloc(who.groups, sizeof(gid_t) * (size_t)count);
            if (!bigger) { free(who.groups); who.groups = NULL; }
            else who.groups = bigger;
        }
        if (!who.groups) finish("error cannot list the account's groups");
        who.group_count = count;
    }
    char **envp = job_environment(environ_text, environ_length, user ? &who : NULL);
    if (!envp) finish("error out of memory");

    // The job's standard streams, opened here (as the supervisor's user) and handed over as descriptors.
    int in_fd = -1, out_fd = -1, err_fd = -1, pty_master = -1, stdin_write = -1;
    char tty_name[128] = {0};
    if (tty_rows > 0) {
        pty_master = mgpu_open_pty(tty_name, sizeof tty_name, tty_rows, tty_columns);
        if (pty_master < 0) finish("error cannot open a pseudo-terminal");
        fcntl(pty_master, F_SETFL, fcntl(pty_master, F_GETFL) | O_NONBLOCK);
        out_fd = mgpu_open_beneath(job_dir, "stdout", O_WRONLY | O_CREAT | O_APPEND, folder_owner);
        if (out_fd < 0) finish("error cannot open the job's output file");
    } else {
        if (want_stdin) {
            int fds[2];
            if (pipe2(fds, O_CLOEXEC) != 0) finish("error cannot make a pipe for stdin");
            fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
            in_fd = fds[0];
            stdin_write = fds[1];
        } else {
            in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        out_fd = mgpu_open_beneath(job_dir, "stdout", O_WRONLY | O_CREAT | O_APPEND, folder_owner);
        err_fd = mgpu_open_beneath(job_dir, "stderr", O_WRONLY | O_CREAT | O_APPEND, folder_owner);
        if (in_fd < 0 || out_fd < 0 || err_fd < 0) finish("error cannot open the job's standard streams");
    }
    int stdin_source = want_stdin ? mgpu_open_beneath(job_dir, "stdin", O_RDONLY, folder_owner) : -1;
    if (want_stdin && stdin_source < 0) finish("error cannot open the job's stdin file");

    // The child tells us through this pipe why it could not start the job; it closes unread on a successful exec.
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) finish("error cannot make a pipe");

    char *shell_argv[] = {"/bin/sh", "-c", command, NULL};
    pid_t job = fork();
    if (job < 0) {
        snprintf(line, sizeof line, "error cannot start the job: %s", strerror(errno));
        finish(line);
    }
    if (job == 0) {
        // The child: async-signal-safe calls only. Signals back to their defaults, an empty mask.
        sigset_t empty;
        sigemptyset(&empty);
        int reset[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM};
        struct sigaction default_action;
        memset(&default_action, 0, sizeof default_action);
        default_action.sa_handler = SIG_DFL;
        for (size_t i = 0; i < sizeof reset / sizeof *reset; i++) sigaction(reset[i], &default_action, NULL);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        if (setsid() < 0) child_fail(report[1], "cannot start a session", NULL, errno);
        if (pty_master >= 0) {
            // Opened first in the new session, the terminal becomes the job's controlling terminal.
            int slave = open(tty_name, O_RDWR);
            if (slave < 0) child_fail(report[1], "cannot open the terminal", tty_name, errno);
            ioctl(slave, TIOCSCTTY, 0);
            if (user) (void)!fchown(slave, who.uid, (gid_t)-1);
            if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) child_fail(report[1], "cannot set up the terminal", NULL, errno);
            if (slave > 2) close(slave);
        } else {
            if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) child_fail(report[1], "cannot set up the job's streams", NULL, errno);
        }
        if (user) {
            if (setgroups((size_t)who.group_count, who.groups) != 0 || setgid(who.gid) != 0 || setuid(who.uid) != 0)
                child_fail(report[1], "cannot switch to the Unix account", who.name, errno);
            if (who.uid != 0 && (setuid(0) == 0 || geteuid() != who.uid || getuid() != who.uid || getegid() != who.gid))
                child_fail(report[1], "the switch to the Unix account did not drop root:", who.name, EPERM);
        }
        // As the owner: the job may only enter what its owner may enter.
        if (chdir(workdir) != 0) child_fail(report[1], "cannot enter", workdir, errno);
        // The job gets its three streams and nothing else: whatever else is open (from the agent, from the account
        // look-up) closes at exec, the report pipe included.
        if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) != 0) {
            for (int fd = 3; fd < 65536; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        execve("/bin/sh", shell_argv, envp);
        child_fail(report[1], "cannot start", "/bin/sh", errno);
    }
    close(report[1]);
    if (in_fd >= 0) close(in_fd);
    if (err_fd >= 0) close(err_fd);
    if (pty_master < 0 && out_fd >= 0) { close(out_fd); out_fd = -1; }
    // Until the job execs, the child runs as its owner, and the owner controls how long that takes (a chdir into a
    // hung network mount, a SIGSTOP): wait for its report, a termination request or the time limit, whichever comes
    // first, never blocking on the child alone.
    double started = monotonic_seconds();
    int signal_fd = signalfd(-1, &watched, SFD_CLOEXEC);
    char why[1024];
    size_t got = 0;
    int stopped = 0;  // 1: asked to terminate, 2: time limit, before the job started
    for (;;) {
        struct pollfd fds[2] = {{report[0], POLLIN, 0}, {signal_fd, POLLIN, 0}};
        int timeout = -1;
        if (time_limit >= 0) {
            double left = started + time_limit - monotonic_seconds();
            timeout = left <= 0 ? 0 : (int)(left * 1000) + 1;
        }
        int ready = poll(fds, signal_fd >= 0 ? 2 : 1, timeout);
        if (ready < 0 && errno == EINTR) continue;
        if (ready == 0) { stopped = 2; break; }
        if (signal_fd >= 0 && (fds[1].revents & POLLIN)) {
            struct signalfd_siginfo info;
            if (read(signal_fd, &info, sizeof info) == (ssize_t)sizeof info
                && (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT || info.ssi_signo == SIGHUP)) { stopped = 1; break; }
            continue;  // SIGCHLD or SIGPIPE: the report pipe says whether it started
        }
        if (fds[0].revents) {
            ssize_t n = read(report[0], why + got, sizeof why - 1 - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;  // closed on exec: the job started
            got += (size_t)n;
            if (got == sizeof why - 1) break;
        }
    }
    if (signal_fd >= 0) close(signal_fd);
    close(report[0]);
    if (stopped || got > 0) {
        if (stopped) { kill(job, SIGKILL); kill(-job, SIGKILL); }
        int ignored;
        while (waitpid(job, &ignored, 0) < 0 && errno == EINTR) {}
        kill_leftovers();
        if (pty_master >= 0) pump(pty_master, out_fd);
        why[got] = 0;
        if (stopped == 1) finish("signal 9");
        if (stopped == 2) finish("timeout signal 9");
        snprintf(line, sizeof line, "error %s", why);
        finish(line);
    }
    snprintf(line, sizeof line, "%d %d\n", (int)getpid(), (int)job);
    write_atomically("pid", line);

    int interactive = want_stdin || pty_master >= 0;
    double kill_deadline = -1;
    int timed_out = 0, status = 0;
    static struct feeder feeder;
    feeder.source = stdin_source;
    feeder.target = pty_master >= 0 ? pty_master : stdin_write;
    feeder.is_terminal = pty_master >= 0;
    feeder.enabled = want_stdin;

    for (;;) {
        // Notice the end without reaping it: the group's id stays the job's until the leftovers are killed below.
        siginfo_t ended;
        memset(&ended, 0, sizeof ended);
        int r;
        do { r = waitid(P_PID, (id_t)job, &ended, WEXITED | WNOHANG | WNOWAIT); } while (r < 0 && errno == EINTR);
        if (r == 0 && ended.si_pid == job) break;
        if (r < 0 && errno == ECHILD) break;
        // Orphans of the job that ended while it runs (re-parented here, the subreaper) are reaped as they come: left
        // as zombies they would count against the owner's process limit for as long as the job runs.
        (void)reap_children(job, 64);
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
        } else if ((sig == SIGTERM || sig == SIGINT || sig == SIGHUP) && kill_deadline < 1e300) {
            kill_deadline = monotonic_seconds();  // asked again: no more grace
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
        if (pty_master >= 0) pump(pty_master, out_fd);
        feed(&feeder);
    }
    if (pty_master >= 0) pump(pty_master, out_fd);
    // The main process is gone (not reaped yet, so its group id is still the job's): leave nothing of the group behind.
    kill(-job, SIGKILL);
    while (waitpid(job, &status, 0) < 0 && errno == EINTR) {}
    kill_leftovers();
    if (pty_master >= 0) pump(pty_master, out_fd);   // what the leftovers wrote before they ended
    const char *prefix = timed_out ? "timeout " : "";
    if (WIFSIGNALED(status)) snprintf(line, sizeof line, "%ssignal %d", prefix, WTERMSIG(status));
    else snprintf(line, sizeof line, "%scode %d", prefix, WIFEXITED(status) ? WEXITSTATUS(status) : 255);
    finish(line);
}

// glibc calls constructors with (argc, argv, envp). For `_supervise` this one never returns.
__attribute__((constructor(101)))
static void mgpu_supervise_hook(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc > 1 && argv && argv[1] && !strcmp(argv[1], "_supervise")) _exit(mgpu_supervise_main(argc - 2, argv + 2));
}
