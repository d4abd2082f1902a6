import MgpuCore
import MgpuWire
import Testing

/// The listing's text, written into bytes (`Table.render(into:)`, `formatElapsed` into a small buffer), against the
/// plain String-building versions it replaced, on seeded random tables and durations.
@Suite struct TableRenderTests {
    /// Table.render as it was: a String grown cell by cell.
    static func plainRender(header: [String], rows: [[String]]) -> String {
        let rows = rows.map { $0.map(Terminal.safe) }
        func width(_ cell: String) -> Int { cell.utf8.allSatisfy { $0 < 0x80 } ? cell.utf8.count : cell.count }
        var widths = header.map(width)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], width(cell)) } }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                out += cell
                if i < cells.count - 1 { out += String(repeating: " ", count: max(2, (i < widths.count ? widths[i] : 0) - width(cell) + 2)) }
            }
            return out
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// formatElapsed as it was: string interpolation.
    static func plainElapsed(_ seconds: Double) -> String {
        let s = max(0, Int(seconds))
        let (d, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if d > 0 { return "\(d)-\(two(h)):\(two(m)):\(two(sec))" }
        if h > 0 { return "\(h):\(two(m)):\(two(sec))" }
        return "\(m):\(two(sec))"
    }

    @Test func tablesMatchThePlainRendering() {
        var random = SeededRandom(seed: 20261124)
        let pieces = ["", "a", "JOBID", "naïve", "café", "\u{1B}[2J", "x y", "日本", "PENDING", "waiting: 12 jobs of higher priority", "\t", "é"]
        for round in 0..<500 {
            let columns = Int.random(in: 1...6, using: &random)
            let header = (0..<columns).map { _ in pieces.randomElement(using: &random)! }
            let rows = (0..<Int.random(in: 0...8, using: &random)).map { _ in
                // Rows may be shorter or longer than the header.
                (0..<Int.random(in: 0...(columns + 2), using: &random)).map { _ in
                    (0..<Int.random(in: 0...3, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
                }
            }
            let table = Table(header: header, rows: rows)
            #expect(table.render() == Self.plainRender(header: header, rows: rows), "round \(round): \(header) \(rows)")
            var bytes: [UInt8] = Array("before".utf8)
            table.render(into: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == "before" + Self.plainRender(header: header, rows: rows), "appended after what is there")
        }
    }

    @Test func durationsMatchThePlainFormatting() {
        var random = SeededRandom(seed: 7)
        var values: [Double] = [0, 0.4, 0.99, 1, 9, 10, 59, 59.9, 60, 61, 599, 600, 3599, 3600, 3601, 35_999, 36_000, 86_399,
                                86_400, 86_401, 863_999, 864_000, 8_640_000, 1e9, 1e12, -0.5, -1, -1e9]
        values += (0..<5000).map { _ in Double.random(in: 0...(Bool.random(using: &random) ? 200_000 : 1e10), using: &random) }
        for value in values {
            #expect(formatElapsed(value) == Self.plainElapsed(value), "\(value)")
        }
    }

    @Test func nonsenseDurationsDoNotCrash() {
        #expect(formatElapsed(.nan) == "0:00")
        #expect(formatElapsed(-.infinity) == "0:00")
        #expect(formatElapsed(.infinity).contains("-"))   // clamped to a very long time (days), not a trap
        #expect(formatElapsed(1e300) == formatElapsed(.infinity))
    }
}
