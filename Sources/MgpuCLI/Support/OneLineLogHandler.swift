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
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let level = event.level.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
        let line = "\(Self.timestamp()) \(level) \(event.message)\(fields.isEmpty ? "" : " " + fields)\n"
        FileHandle.standardError.write(Data(line.utf8))
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
