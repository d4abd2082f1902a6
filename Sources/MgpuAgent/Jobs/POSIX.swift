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

/// Whether `pid` is a live (not zombie) process whose command line contains `marker`.
func processAlive(_ pid: Int32, commandLineContains marker: String) -> Bool {
    guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let stat = readSmallFile("/proc/\(pid)/stat"),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)...].first
    if state == "Z" || state == "X" { return false }
    guard let cmdline = readSmallFile("/proc/\(pid)/cmdline") else { return false }
    return cmdline.replacingNulls.contains(marker)
}

func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Reaps every exited child without blocking (supervisors the agent started).
func reapChildren() {
    var status: Int32 = 0
    while waitpid(-1, &status, WNOHANG) > 0 {}
}

extension String {
    var replacingNulls: String { String(map { $0 == "\0" ? " " : $0 }) }
}
