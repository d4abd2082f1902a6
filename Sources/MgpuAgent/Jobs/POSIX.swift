import MgpuSupervisor
#if canImport(Glibc)
import Glibc
#endif

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

/// A Unix account a root agent runs a job as.
struct UnixAccount {
    let name: String
    let uid: uid_t
    let gid: gid_t

    /// The account named `name` on this machine, or nil.
    static func named(_ name: String) -> UnixAccount? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return UnixAccount(name: name, uid: entry.pw_uid, gid: entry.pw_gid)
    }
}

struct POSIXError: Error, CustomStringConvertible {
    let path: String
    let code: Int32
    var detail: String?
    init(path: String, _ code: Int32, _ detail: String? = nil) {
        self.path = path
        self.code = code
        self.detail = detail
    }
    var description: String { "\(path): \(detail ?? String(cString: strerror(code)))" }
}
