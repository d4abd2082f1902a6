import MgpuSupervisor
#if canImport(Glibc)
import Glibc
#endif

func getEnvironment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

func isExecutable(_ path: String) -> Bool {
    access(path, X_OK) == 0
}

/// This executable's path, so the agent can start `mgpu _supervise`.
func currentExecutable() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return CommandLine.arguments[0] }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Whether `pid` is a live (not zombie) process whose command line contains `marker`. Used for processes
/// this agent did not start (re-adopted supervisors), where the pid may have been reused. An empty command
/// line (a process in the middle of exec) counts as a match.
func processAlive(_ pid: Int32, commandLineContains marker: String) -> Bool {
    guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let stat = readSmallFile("/proc/\(pid)/stat"),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)...].first
    if state == "Z" || state == "X" { return false }
    guard let cmdline = readSmallFile("/proc/\(pid)/cmdline") else { return false }
    return cmdline.isEmpty || cmdline.replacingNulls.contains(marker)
}

func readSmallFile(_ path: String) -> String? {
    Supervisor.readFile(path)
}

/// Reaps `pid` if it has exited (without blocking). True when it is gone.
func reapIfExited(_ pid: Int32) -> Bool {
    var status: Int32 = 0
    var r: Int32
    repeat { r = waitpid(pid, &status, WNOHANG) } while r < 0 && errno == EINTR
    return r == pid || (r < 0 && errno == ECHILD)
}

/// A TCP port free on this machine just now (bound to port 0 and released).
func freeTCPPort() -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = INADDR_ANY
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    guard bound == 0 else { return nil }
    let named = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    guard named == 0 else { return nil }
    return Int(UInt16(bigEndian: addr.sin_port))
}

extension String {
    var replacingNulls: String { String(map { $0 == "\0" ? " " : $0 }) }
}

/// Creates (or truncates) `path` with `bytes`: plain open/write/close, no temporary file and no fsync. A job's
/// files guard against the agent dying, not the machine, and a job starts with several of them. Owner-only: a
/// job's files hold its environment and output.
func writeFile(_ path: String, _ bytes: some Collection<UInt8>) throws(POSIXError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw POSIXError(path: path, errno) }
    defer { close(fd) }
    let data = Array(bytes)
    var done = 0
    while done < data.count {
        let n = data.withUnsafeBytes { write(fd, $0.baseAddress! + done, data.count - done) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw POSIXError(path: path, errno) }
        done += n
    }
}

func makeDirectory(_ path: String) throws(POSIXError) {
    guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw POSIXError(path: path, errno) }
}

/// Gives `paths` to the Unix account `account` (a root agent hands a job's output to the job's owner).
func giveOwnership(_ paths: [String], to account: UnixAccount) throws(POSIXError) {
    for path in paths where chown(path, account.uid, account.gid) != 0 { throw POSIXError(path: path, errno) }
}

/// A Unix account a root agent runs a job as.
struct UnixAccount {
    let name: String
    let uid: uid_t
    let gid: gid_t

    /// The account named `name` on this machine, or nil.
    static func named(_ name: String) -> UnixAccount? {
        guard let pw = getpwnam(name) else { return nil }
        return UnixAccount(name: name, uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid)
    }
}

struct POSIXError: Error, CustomStringConvertible {
    let path: String
    let code: Int32
    init(path: String, _ code: Int32) {
        self.path = path
        self.code = code
    }
    var description: String { "\(path): \(String(cString: strerror(code)))" }
}
