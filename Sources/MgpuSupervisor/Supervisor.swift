import CMgpuSpawn
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The per-job supervisor, `mgpu _supervise JOBDIR GRACE [--time S] [--stdin] [--tty ROWS COLS]`, is C code
/// (CMgpuSpawn/mgpu_supervise.c: what it does, and why it runs before the Swift runtime starts). This is its entry
/// from Swift, and the small-file helpers the agent shares with it.
public enum Supervisor {
    /// Runs the supervisor (normally reached before Swift starts; this is the way in from Swift code).
    public static func main(_ args: [String]) -> Never {
        var cArgs = args.map { strdup($0) }
        let code = cArgs.withUnsafeMutableBufferPointer { mgpu_supervise_main(Int32($0.count), $0.baseAddress) }
        exit(code)
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
}
