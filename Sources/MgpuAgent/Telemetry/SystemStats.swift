import MgpuCore

/// CPU, load and memory from /proc.
public enum SystemStats {
    /// Jiffies from the first line of /proc/stat: (busy, total).
    public struct CPUTimes: Equatable, Sendable {
        public var busy: UInt64
        public var total: UInt64
    }

    public static func parseCPU(_ procStat: String) -> CPUTimes? {
        guard let line = procStat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let values = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard values.count >= 4 else { return nil }
        let total = values.reduce(0, +)
        let idle = values[3] + (values.count > 4 ? values[4] : 0)  // idle + iowait
        return CPUTimes(busy: total - idle, total: total)
    }

    /// Utilisation between two samples, in percent.
    public static func percent(from a: CPUTimes, to b: CPUTimes) -> Double? {
        guard b.total > a.total, b.busy >= a.busy else { return nil }
        return min(100, Double(b.busy - a.busy) / Double(b.total - a.total) * 100)
    }

    public static func parseLoad(_ loadavg: String) -> [Double]? {
        let values = loadavg.split(separator: " ").prefix(3).compactMap { Double($0) }
        return values.count == 3 ? values : nil
    }

    /// (used, total) in MB: used is MemTotal - MemAvailable.
    public static func parseMemory(_ meminfo: String) -> (used: Int, total: Int)? {
        var fields: [String: Int] = [:]
        for line in meminfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let kb = Int(parts[1].split(separator: " ").first ?? "") else { continue }
            fields[String(parts[0])] = kb
        }
        guard let total = fields["MemTotal"], let available = fields["MemAvailable"] ?? fields["MemFree"] else { return nil }
        return ((total - available) / 1024, total / 1024)
    }
}
