import Foundation
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
        let rows = self.rows.map { $0.map(Terminal.safe) }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        out.reserveCapacity((widths.reduce(0, +) + 2 * widths.count + 1) * (rows.count + 1))
        func line(_ cells: [String]) {
            for (i, cell) in cells.enumerated() {
                out += cell
                guard i < cells.count - 1 else { break }
                let pad = (i < widths.count ? widths[i] : 0) - cell.count + 2
                out += String(repeating: " ", count: max(2, pad))
            }
        }
        line(header)
        for row in rows {
            out += "\n"
            line(row)
        }
        return out
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
public func formatClock(_ time: Double, now: Double) -> String {
    let formatter = DateFormatter()
    formatter.dateFormat = abs(time - now) < 20 * 3600 ? "HH:mm" : "MMM d HH:mm"
    return formatter.string(from: Date(timeIntervalSince1970: time))
}

/// "1 %", "2.5 %".
public func formatPercent(_ value: Double) -> String {
    value == value.rounded() ? "\(Int(value)) %" : String(format: "%.1f %%", value)
}
