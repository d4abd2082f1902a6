import Foundation
#if canImport(Glibc)
import Glibc
#endif
/// A plain text table with left-aligned columns. Cells are printed through `Terminal.safe`: a job name or a GPU name
/// cannot move the reader's cursor or change its terminal.
public struct Table: Sendable {
    public var header: [String]
    public var rows: [[String]] = []

    public init(header: [String], rows: [[String]] = []) {
        self.header = header
        self.rows = rows
    }

    public func render() -> String {
        // Each cell made safe and measured in one pass (printable ASCII, the common case, as it is: its UTF-8 count).
        var rows = self.rows
        var counts = [[Int]]()
        counts.reserveCapacity(rows.count)
        for r in rows.indices {
            var rowCounts = [Int](repeating: 0, count: rows[r].count)
            for c in rows[r].indices {
                if let plain = Self.plainWidth(rows[r][c]) {
                    rowCounts[c] = plain
                } else {
                    rows[r][c] = Terminal.safe(rows[r][c])
                    rowCounts[c] = Self.width(rows[r][c])
                }
            }
            counts.append(rowCounts)
        }
        let headerCounts = header.map(Self.width)
        var widths = headerCounts
        for row in counts { for (i, count) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], count) } }
        let blanks = String(repeating: " ", count: (widths.max() ?? 0) + 2)
        var out = ""
        out.reserveCapacity((widths.reduce(0, +) + 2 * widths.count + 1) * (rows.count + 1))
        func line(_ cells: [String], _ counts: [Int]) {
            for (i, cell) in cells.enumerated() {
                out += cell
                guard i < cells.count - 1 else { break }
                let pad = max(2, (i < widths.count ? widths[i] : 0) - counts[i] + 2)
                if pad <= blanks.utf8.count { out += Substring(blanks.utf8.prefix(pad)) } else { out += String(repeating: " ", count: pad) }
            }
        }
        line(header, headerCounts)
        for (row, rowCounts) in zip(rows, counts) {
            out += "\n"
            line(row, rowCounts)
        }
        return out
    }

    /// The width of a cell of printable ASCII only (nothing for `Terminal.safe` to change); nil for any other.
    static func plainWidth(_ cell: String) -> Int? {
        let plain = cell.utf8.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F } }
            ?? cell.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        return plain ? cell.utf8.count : nil
    }

    static func width(_ cell: String) -> Int {
        cell.utf8.allSatisfy { $0 < 0x80 } ? cell.utf8.count : cell.count
    }
}

/// 0:05, 1:02:03, 2-03:04:05 (days-hours:minutes:seconds, as Slurm prints).
public func formatElapsed(_ seconds: Double) -> String {
    let s = max(0, Int(seconds))
    let (d, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60)
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    if d > 0 { return "\(d)-\(two(h)):\(two(m)):\(two(sec))" }
    if h > 0 { return "\(h):\(two(m)):\(two(sec))" }
    return "\(m):\(two(sec))"
}

/// "14:20" within 20 hours of now, else "Nov 25 14:20" (this machine's time zone).
/// (With the C library's local time: a DateFormatter made per call was a fifth of a 10,000-job listing's time.)
public func formatClock(_ time: Double, now: Double) -> String {
    guard time.isFinite, abs(time) < 1e12 else { return "-" }
    var seconds = time_t(time.rounded(.down))
    var parts = tm()
    guard localtime_r(&seconds, &parts) != nil else { return "-" }
    var buffer = [CChar](repeating: 0, count: 32)
    let count = strftime(&buffer, buffer.count, abs(time - now) < 20 * 3600 ? "%H:%M" : "%b %-d %H:%M", &parts)
    return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// "1 %", "2.5 %".
public func formatPercent(_ value: Double) -> String {
    value == value.rounded() ? "\(Int(value)) %" : String(format: "%.1f %%", value)
}
