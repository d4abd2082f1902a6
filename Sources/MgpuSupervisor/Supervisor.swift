import CMgpuSpawn
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The per-job supervisor: `mgpu _supervise JOBDIR GRACE [--time S] [--stdin] [--tty ROWS COLS]`, started by
/// the agent in a session of its own.
///
/// It runs `/bin/sh -c "$(cat JOBDIR/command)"` in JOBDIR/workdir, in a new session (so the job leads its own
/// process group), with its own environment. Output is appended to JOBDIR/stdout and JOBDIR/stderr (with `--tty`,
/// the job runs under a pseudo-terminal and everything it prints goes to JOBDIR/stdout). With `--stdin`, what the
/// agent appends to JOBDIR/stdin is fed to the job's stdin, which closes once JOBDIR/stdin.eof exists and all of it
/// was fed. SIGTERM, SIGINT or SIGHUP to the supervisor, or the time limit, terminate the job: SIGTERM to its whole
/// process group, SIGKILL after the grace period. When the job's main process ends, whatever is left of its group is
/// killed and the status is written atomically to JOBDIR/exit (`code N` or `signal N`, after `timeout ` when the
/// time limit stopped it). It outlives the agent, which re-adopts it by reading JOBDIR.
///
/// Files: JOBDIR/pid holds "SUPERVISOR_PID JOB_PID" once the job started; JOBDIR/exit appears when it ended.
public enum Supervisor {
    struct Options {
        var dir = ""
        var grace = 10.0
        var timeLimit: Double?
        var stdin = false
        var tty: (rows: Int32, columns: Int32)?
    }

    static func parse(_ args: [String]) -> Options? {
        guard args.count >= 2, let grace = Double(args[1]) else { return nil }
        var o = Options(dir: args[0], grace: grace)
        var i = 2
        while i < args.count {
            switch args[i] {
            case "--time" where i + 1 < args.count: o.timeLimit = Double(args[i + 1]); i += 2
            case "--stdin": o.stdin = true; i += 1
            case "--tty" where i + 2 < args.count:
                o.tty = (Int32(args[i + 1]) ?? 24, Int32(args[i + 2]) ?? 80); i += 3
            default: return nil
            }
        }
        return o
    }

    public static func main(_ args: [String]) -> Never {
        guard let options = parse(args) else {
            writeAll(2, "usage: mgpu _supervise JOBDIR GRACE_SECONDS [--time S] [--stdin] [--tty ROWS COLS]\n")
            exit(2)
        }
        let dir = options.dir
        var watched = sigset_t()
        sigemptyset(&watched)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE] { sigaddset(&watched, s) }
        sigprocmask(SIG_BLOCK, &watched, nil)

        guard let command = readFile(dir + "/command") else { finish(dir, "error cannot read \(dir)/command") }
        if let workdir = readFile(dir + "/workdir"), chdir(workdir) != 0 {
            // As Slurm does: run from /tmp, and say so in the job's stderr.
            appendFile(dir + "/stderr", "mgpu: cannot enter working directory \(workdir): \(String(cString: strerror(errno))); running in /tmp\n")
            chdir("/tmp")
        }

        // The job's standard streams.
        var ptyMaster: Int32 = -1
        var stdinWrite: Int32 = -1
        let stdinSource: Spawn.Input, out: Spawn.Input, err: Spawn.Input
        if let tty = options.tty {
            var name = [CChar](repeating: 0, count: 128)
            ptyMaster = mgpu_open_pty(&name, name.count, tty.rows, tty.columns)
            guard ptyMaster >= 0 else { finish(dir, "error cannot open a pseudo-terminal") }
            let slave = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // Opened first in the new session, the terminal becomes the job's controlling terminal.
            stdinSource = .path(slave, flags: O_RDWR)
            out = .path(slave, flags: O_RDWR)
            err = .path(slave, flags: O_RDWR)
            _ = fcntl(ptyMaster, F_SETFL, fcntl(ptyMaster, F_GETFL) | O_NONBLOCK)
        } else {
            out = .path(dir + "/stdout", flags: O_WRONLY | O_CREAT | O_APPEND)
            err = .path(dir + "/stderr", flags: O_WRONLY | O_CREAT | O_APPEND)
            if options.stdin {
                var fds: [Int32] = [0, 0]
                guard pipe(&fds) == 0 else { finish(dir, "error cannot make a pipe for stdin") }
                _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
                _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
                stdinSource = .fd(fds[0])
                stdinWrite = fds[1]
            } else {
                stdinSource = .devNull
            }
        }
        let jobPid: pid_t
        do {
            jobPid = try Spawn.start(["/bin/sh", "-c", command], environment: currentEnvironment(),
                                     stdin: stdinSource, stdout: out, stderr: err, newSession: true)
        } catch {
            finish(dir, "error \(error.message)")
        }
        if case .fd(let r) = stdinSource { close(r) }
        writeAtomically(dir + "/pid", "\(getpid()) \(jobPid)\n")

        let interactive = options.stdin || ptyMaster >= 0
        let started = Spawn.monotonicSeconds()
        var feeder = StdinFeeder(path: dir + "/stdin", eofPath: dir + "/stdin.eof", target: ptyMaster >= 0 ? ptyMaster : stdinWrite,
                                 isTerminal: ptyMaster >= 0, enabled: options.stdin)
        var killDeadline: Double?
        var timedOut = false
        var status: Int32 = 0
        var outputFd: Int32 = -1
        if ptyMaster >= 0 { outputFd = open(dir + "/stdout", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }

        while true {
            var r: Int32 = 0
            repeat { r = waitpid(jobPid, &status, WNOHANG) } while r < 0 && errno == EINTR
            if r == jobPid { break }
            let now = Spawn.monotonicSeconds()
            // Wait for a signal (the job's end, a termination request) or, when interactive, at most 20 ms.
            var wait = interactive ? 0.02 : 1.0
            if let limit = options.timeLimit, killDeadline == nil { wait = min(wait, max(0.001, started + limit - now)) }
            if let deadline = killDeadline { wait = min(wait, max(0.001, deadline - now)) }
            var timeout = timespec(tv_sec: Int(wait), tv_nsec: Int((wait - Double(Int(wait))) * 1e9))
            let sig = sigtimedwait(&watched, nil, &timeout)
            if sig == SIGTERM || sig == SIGINT || sig == SIGHUP, killDeadline == nil {
                kill(-jobPid, SIGTERM)
                killDeadline = Spawn.monotonicSeconds() + options.grace
            }
            if let limit = options.timeLimit, killDeadline == nil, Spawn.monotonicSeconds() >= started + limit {
                timedOut = true
                kill(-jobPid, SIGTERM)
                killDeadline = Spawn.monotonicSeconds() + options.grace
            }
            if let deadline = killDeadline, Spawn.monotonicSeconds() >= deadline {
                kill(-jobPid, SIGKILL)
                killDeadline = .infinity
            }
            if ptyMaster >= 0 { pump(ptyMaster, to: outputFd) }
            feeder.feed()
        }
        if ptyMaster >= 0 { pump(ptyMaster, to: outputFd) }
        // The main process is gone: leave nothing of its group behind.
        kill(-jobPid, SIGKILL)
        let decoded = Spawn.decode(status)
        let prefix = timedOut ? "timeout " : ""
        if let signal = decoded.signal { finish(dir, "\(prefix)signal \(signal)") }
        finish(dir, "\(prefix)code \(decoded.code ?? 255)")
    }

    /// Copies what the job wrote to its terminal into its output file.
    static func pump(_ from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(from, &buffer, buffer.count)
            if n <= 0 { return }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { write(to, $0.baseAddress! + done, n - done) }
                if w <= 0 { return }
                done += w
            }
        }
    }

    static func finish(_ dir: String, _ line: String) -> Never {
        writeAtomically(dir + "/exit", line + "\n")
        exit(0)
    }

    static func currentEnvironment() -> [String] {
        var result: [String] = []
        var p = environ
        while let entry = p.pointee {
            result.append(String(cString: entry))
            p += 1
        }
        return result
    }

    public static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func writeAll(_ fd: Int32, _ text: String) {
        _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }

    static func appendFile(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { return }
        writeAll(fd, text)
        close(fd)
    }

    /// Writes to a temporary file, fsyncs it and renames it over `path`.
    public static func writeAtomically(_ path: String, _ text: String) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return }
        writeAll(fd, text)
        fsync(fd)
        close(fd)
        rename(tmp, path)
    }
}

/// Feeds JOBDIR/stdin (appended by the agent) to the job, never blocking: what the job does not take yet is
/// offered again on the next round. At JOBDIR/stdin.eof, once everything was fed, the pipe is closed
/// (for a terminal, end-of-file is typed: Ctrl-D).
struct StdinFeeder {
    let path: String
    let eofPath: String
    var target: Int32
    let isTerminal: Bool
    var enabled: Bool
    var offset: Int64 = 0
    var pending: [UInt8] = []

    mutating func feed() {
        guard enabled, target >= 0 else { return }
        if pending.isEmpty {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd >= 0 {
                var buffer = [UInt8](repeating: 0, count: 65536)
                let n = pread(fd, &buffer, buffer.count, off_t(offset))
                close(fd)
                if n > 0 {
                    pending = Array(buffer[0..<n])
                    offset += Int64(n)
                }
            }
        }
        while !pending.isEmpty {
            let w = pending.withUnsafeBytes { write(target, $0.baseAddress!, $0.count) }
            if w < 0 {
                if errno == EAGAIN || errno == EINTR { return }
                enabled = false  // the job closed its stdin
                return
            }
            pending.removeFirst(w)
        }
        if access(eofPath, F_OK) == 0 {
            var st = stat()
            if stat(path, &st) != 0 || Int64(st.st_size) <= offset {
                if isTerminal {
                    var eot: UInt8 = 4
                    _ = write(target, &eot, 1)
                } else {
                    close(target)
                    target = -1
                }
                enabled = false
            }
        }
    }
}
