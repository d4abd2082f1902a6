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
        var out: [UInt8] = []
        render(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the table's lines to `out` as UTF-8 (no newline after the last): what `render()` returns, without a
    /// String grown by some 16 appends a line (a 10,000-line listing's cells and blanks were 160,000 appends).
    public func render(into out: inout [UInt8]) {
        // Each cell made safe and measured in one pass (printable ASCII, the common case, as it is: its UTF-8 count).
        var rows = self.rows
        let columns = max(header.count, rows.reduce(0) { max($0, $1.count) })
        var counts = [Int](repeating: 0, count: rows.count * columns)   // row r's cell c at r * columns + c
        for r in rows.indices {
            for c in rows[r].indices {
                if let plain = Self.plainWidth(rows[r][c]) {
                    counts[r * columns + c] = plain
                } else {
                    rows[r][c] = Terminal.safe(rows[r][c])
                    counts[r * columns + c] = Self.width(rows[r][c])
                }
            }
        }
        let headerCounts = header.map(Self.width)
        var widths = headerCounts
        for r in rows.indices {
            for c in 0..<min(rows[r].count, widths.count) { widths[c] = max(widths[c], counts[r * columns + c]) }
        }
        out.reserveCapacity(out.count + (widths.reduce(0, +) + 2 * widths.count + 1) * (rows.count + 1))
        func line(_ cells: [String], _ count: (Int) -> Int) {
            for (i, cell) in cells.enumerated() {
                var cell = cell
                cell.withUTF8 { out.append(contentsOf: $0) }
                guard i < cells.count - 1 else { break }
                let pad = max(2, (i < widths.count ? widths[i] : 0) - count(i) + 2)
                for _ in 0..<pad { out.append(0x20) }
            }
        }
        line(header) { headerCounts[$0] }
        for r in rows.indices {
            out.append(0x0A)
            line(rows[r]) { counts[r * columns + $0] }
        }
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
/// (Digits written into a small buffer: with string interpolation it was a tenth of a 10,000-job listing's time.)
public func formatElapsed(_ seconds: Double) -> String {
    let s = seconds >= 0 && seconds < Double(Int.max / 2) ? Int(seconds) : (seconds < 0 || seconds.isNaN ? 0 : Int.max / 2)
    let (d, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60)
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 40) { buffer in
        var at = 0
        func put(_ byte: UInt8) { buffer[at] = byte; at += 1 }
        func number(_ n: Int) {
            if n >= 10 { number(n / 10) }
            put(0x30 + UInt8(n % 10))
        }
        func two(_ n: Int) { put(0x30 + UInt8(n / 10)); put(0x30 + UInt8(n % 10)) }
        if d > 0 {
            number(d); put(0x2D); two(h); put(0x3A); two(m); put(0x3A); two(sec)
        } else if h > 0 {
            number(h); put(0x3A); two(m); put(0x3A); two(sec)
        } else {
            number(m); put(0x3A); two(sec)
        }
        return String(decoding: UnsafeBufferPointer(rebasing: buffer[0..<at]), as: UTF8.self)
    }
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
