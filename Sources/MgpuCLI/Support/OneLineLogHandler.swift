import Foundation
import Logging

/// One line per event on stderr: `2026-11-23T08:00:00.123Z info  job started job=F68FAFEC node=node001`.
struct OneLineLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    let label: String

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        // Built as one String and written with one write(2): Foundation's FileHandle and NSString padding were most of
        // a line's cost (a master logs a line or two per job and per submission).
        let level = event.level.rawValue
        var line = Self.timestamp()
        line.reserveCapacity(96)
        line += " "
        line += level
        if level.utf8.count < 7 { line += String(repeating: " ", count: 7 - level.utf8.count) }
        line += " "
        line += event.message.description
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            line += " "
            line += key
            line += "="
            line += value.description
        }
        line += "\n"
        line.withUTF8 { Self.writeAll($0, to: STDERR_FILENO) }
    }

    /// Writes every byte (write(2) may take part of them, or be interrupted); gives up on any other error, as a log
    /// line that cannot be written has nowhere to go.
    static func writeAll(_ bytes: UnsafeBufferPointer<UInt8>, to fd: Int32) {
        var offset = 0
        while offset < bytes.count {
            let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    /// `2026-11-23T08:00:00.123Z`, UTC. Written digit by digit: Foundation's String(format:) took most of a log
    /// line's time, and a master logs two lines per job.
    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        func digits(_ value: Int, _ width: Int, then separator: Character) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = max(0, value)
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
            bytes.append(separator.asciiValue!)
        }
        digits(Int(parts.tm_year) + 1900, 4, then: "-")
        digits(Int(parts.tm_mon) + 1, 2, then: "-")
        digits(Int(parts.tm_mday), 2, then: "T")
        digits(Int(parts.tm_hour), 2, then: ":")
        digits(Int(parts.tm_min), 2, then: ":")
        digits(Int(parts.tm_sec), 2, then: ".")
        digits(Int(tv.tv_usec / 1000), 3, then: "Z")
        return String(decoding: bytes, as: UTF8.self)
    }

    static func bootstrap(verbose: Bool) {
        LoggingSystem.bootstrap { label in OneLineLogHandler(logLevel: verbose ? .debug : .info, label: label) }
    }
}
