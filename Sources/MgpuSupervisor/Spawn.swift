import CMgpuSpawn
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starts processes with `posix_spawn`, always with an empty signal mask and default signal
/// dispositions, whatever thread calls it, and with no file descriptor of ours beyond 0, 1 and 2. (A child forked from a Swift concurrency thread would
/// otherwise inherit SIGTERM/SIGCHLD blocked and ignore `kill`.)
public enum Spawn {
    public struct Failure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public enum Input {
        case inherit
        case devNull
        case fd(Int32)
        case path(String, flags: Int32)
    }

    /// Spawns `argv[0]` (a path, or a name looked up in PATH) with `environment` (nil: this process's).
    /// With `newSession` the child calls setsid() and so leads its own session and process group.
    /// `blocked` signals start blocked in the child (the supervisor: a SIGTERM that comes while it starts up waits for
    /// it, instead of killing it before it can record anything).
    public static func start(_ argv: [String], environment: [String]? = nil,
                             stdin: Input = .devNull, stdout: Input = .inherit, stderr: Input = .inherit,
                             newSession: Bool = true, blocked: [Int32] = []) throws(Failure) -> pid_t {
        guard let program = argv.first else { throw Failure(message: "no program to start") }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in blocked { sigaddset(&mask, signal) }
        posix_spawnattr_setsigmask(&attr, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession { flags |= 0x80 /* POSIX_SPAWN_SETSID (glibc >= 2.26) */ }
        posix_spawnattr_setflags(&attr, Int16(flags))

        for (fd, input) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch input {
            case .inherit: break
            case .devNull: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
            case .fd(let source): posix_spawn_file_actions_adddup2(&actions, source, fd)
            case .path(let path, let openFlags): posix_spawn_file_actions_addopen(&actions, fd, path, openFlags, 0o644)
            }
        }

        // The child gets stdin, stdout and stderr and nothing else of ours (no sockets, no database files).
        _ = mgpu_spawn_file_actions_addclosefrom(&actions, 3)

        var pid: pid_t = 0
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var rc: Int32 = 0
        let cEnv = environment.map { $0.map { strdup($0) } + [nil] }
        defer { cEnv?.forEach { free($0) } }
        for attempt in 0..<50 {
            if let cEnv {
                rc = program.contains("/") ? posix_spawn(&pid, program, &actions, &attr, cArgs, cEnv)
                    : posix_spawnp(&pid, program, &actions, &attr, cArgs, cEnv)
            } else {
                rc = program.contains("/") ? posix_spawn(&pid, program, &actions, &attr, cArgs, environ)
                    : posix_spawnp(&pid, program, &actions, &attr, cArgs, environ)
            }
            // ETXTBSY: the executable was just written and another child still holds it open for a moment.
            guard rc == ETXTBSY, attempt < 49 else { break }
            usleep(10_000)
        }
        guard rc == 0 else { throw Failure(message: "cannot start \(program): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// The first executable `name` in $PATH (else /usr/bin:/bin), or nil.
    public static func findInPath(_ name: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Runs a program to completion and returns its exit status and standard output.
    /// Gives up (and kills it) after `timeout` seconds. Blocking: call it off the cooperative pool
    /// for long commands.
    public static func capture(_ argv: [String], timeout: Double = 10) throws(Failure) -> (status: Int32, output: String) {
        var fds: [Int32] = [0, 0]
        // Close-on-exec, so that no other child started meanwhile keeps the write end open.
        guard pipe(&fds) == 0 else { throw Failure(message: "pipe failed") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        let pid: pid_t
        do {
            pid = try start(argv, stdout: .fd(fds[1]), stderr: .devNull, newSession: false)
        } catch {
            close(fds[0]); close(fds[1])
            throw error
        }
        close(fds[1])
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = monotonicSeconds() + timeout
        var pfd = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        while true {
            let left = deadline - monotonicSeconds()
            if left <= 0 { kill(pid, SIGKILL); break }
            let ready = poll(&pfd, 1, Int32(min(left, 1) * 1000))
            if ready < 0 && errno == EINTR { continue }
            if ready <= 0 { continue }
            let n = read(fds[0], &buffer, buffer.count)
            if n > 0 { output.append(contentsOf: buffer[0..<n]) } else if n == 0 || errno != EINTR { break }
        }
        close(fds[0])
        let status = waitStatus(pid)
        return (status, String(decoding: output, as: UTF8.self))
    }

    /// Waits for a child and returns its status as a shell would (128+N for signal N).
    public static func waitStatus(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return decode(status).shellCode
    }

    public static func decode(_ status: Int32) -> (code: Int32?, signal: Int32?, shellCode: Int32) {
        let sig = status & 0x7f
        if sig == 0 { let code = (status >> 8) & 0xff; return (code, nil, code) }
        return (nil, sig, 128 + sig)
    }

    public static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
