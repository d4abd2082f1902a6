#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The per-job supervisor: `mgpu _supervise JOBDIR GRACE_SECONDS`, started by the agent in a session of its own.
///
/// It runs `/bin/sh -c "$(cat JOBDIR/command)"` in JOBDIR/workdir, in a new session (so the job leads its own process group),
/// with its own environment and working directory, stdout and stderr appended to JOBDIR/stdout and
/// JOBDIR/stderr, then waits. SIGTERM, SIGINT or SIGHUP to the supervisor terminate the job: SIGTERM to its
/// whole process group, SIGKILL after the grace period. When the job's main process ends, whatever is
/// left of its group is killed, and the status is written atomically to JOBDIR/exit
/// (`code N` or `signal N`). It outlives the agent, which re-adopts it by reading JOBDIR.
///
/// Files: JOBDIR/pid holds "SUPERVISOR_PID JOB_PID" once the job started; JOBDIR/exit appears when it ended.
public enum Supervisor {
    public static func main(_ args: [String]) -> Never {
        guard args.count >= 2 else {
            let usage = "usage: mgpu _supervise JOBDIR GRACE_SECONDS\n"
            _ = usage.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
            exit(2)
        }
        let dir = args[0]
        let grace = Double(args[1]) ?? 10

        var watched = sigset_t()
        sigemptyset(&watched)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&watched, s) }
        sigprocmask(SIG_BLOCK, &watched, nil)

        guard let command = readFile(dir + "/command") else {
            finish(dir, "error cannot read \(dir)/command")
        }
        if let workdir = readFile(dir + "/workdir"), chdir(workdir) != 0 {
            // As Slurm does: run from /tmp, and say so in the job's stderr.
            let note = "mgpu: cannot enter working directory \(workdir): \(String(cString: strerror(errno))); running in /tmp\n"
            let fd = open(dir + "/stderr", O_WRONLY | O_CREAT | O_APPEND, 0o644)
            if fd >= 0 { _ = note.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }; close(fd) }
            chdir("/tmp")
        }
        let env = currentEnvironment()
        let jobPid: pid_t
        do {
            jobPid = try Spawn.start(["/bin/sh", "-c", command], environment: env,
                                     stdin: .devNull,
                                     stdout: .path(dir + "/stdout", flags: O_WRONLY | O_CREAT | O_APPEND),
                                     stderr: .path(dir + "/stderr", flags: O_WRONLY | O_CREAT | O_APPEND),
                                     newSession: true)
        } catch {
            finish(dir, "error \(error.message)")
        }
        writeAtomically(dir + "/pid", "\(getpid()) \(jobPid)\n")

        var killDeadline: Double?
        var status: Int32 = 0
        while true {
            var r: Int32 = 0
            repeat { r = waitpid(jobPid, &status, WNOHANG) } while r < 0 && errno == EINTR
            if r == jobPid { break }
            var timeout = timespec(tv_sec: 1, tv_nsec: 0)
            if let deadline = killDeadline {
                let left = max(0, deadline - Spawn.monotonicSeconds())
                timeout = timespec(tv_sec: Int(left), tv_nsec: Int((left - Double(Int(left))) * 1e9))
            }
            let sig = sigtimedwait(&watched, nil, &timeout)
            if sig == SIGTERM || sig == SIGINT || sig == SIGHUP, killDeadline == nil {
                kill(-jobPid, SIGTERM)
                killDeadline = Spawn.monotonicSeconds() + grace
            }
            if let deadline = killDeadline, Spawn.monotonicSeconds() >= deadline {
                kill(-jobPid, SIGKILL)
                killDeadline = .infinity
            }
        }
        // The main process is gone: leave nothing of its group behind.
        kill(-jobPid, SIGKILL)
        let decoded = Spawn.decode(status)
        if let signal = decoded.signal { finish(dir, "signal \(signal)") }
        finish(dir, "code \(decoded.code ?? 255)")
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

    /// Writes to a temporary file, fsyncs it and renames it over `path`.
    public static func writeAtomically(_ path: String, _ text: String) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { return }
        _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        fsync(fd)
        close(fd)
        rename(tmp, path)
    }
}
