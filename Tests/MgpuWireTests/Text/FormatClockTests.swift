import Foundation
import MgpuWire
import Testing

/// Clock times in listings ("expected start 14:03", "since Nov 5 14:03"): as a DateFormatter in the process's time
/// zone writes them (what mgpu printed before, and what a user's `date` says).
@Suite struct FormatClockTests {
    static func formatter(_ format: String) -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = format
        return formatter
    }

    @Test(arguments: [0.0, 59, 3600, 86_399, 1_700_000_000, 1_800_000_123.9, 1_764_000_000])
    func matchesDateFormatter(_ time: Double) {
        let date = Date(timeIntervalSince1970: time)
        #expect(formatClock(time, now: time + 60) == Self.formatter("HH:mm").string(from: date), "near: the time only")
        #expect(formatClock(time, now: time + 30 * 3600) == Self.formatter("MMM d HH:mm").string(from: date), "a day away: the date too")
        #expect(formatClock(time, now: time - 30 * 3600) == Self.formatter("MMM d HH:mm").string(from: date))
    }

    @Test func nonsenseIsADash() {
        #expect(formatClock(.infinity, now: 0) == "-")
        #expect(formatClock(.nan, now: 0) == "-")
        #expect(formatClock(1e300, now: 0) == "-")
    }
}

/// Tables: columns as wide as their widest cell plus two spaces; wide (non-ASCII) cells count as characters.
@Suite struct TableTests {
    @Test func columnsLineUp() {
        let table = Table(header: ["ID", "NAME", "STATE"], rows: [["1", "ab", "RUNNING"], ["22", "naïve café", "PENDING"], ["3", "", "X"]])
        #expect(table.render() == """
            ID  NAME        STATE
            1   ab          RUNNING
            22  naïve café  PENDING
            3               X
            """)
    }

    @Test func controlCharactersAreShownNotSent() {
        let table = Table(header: ["A", "B"], rows: [["\u{1B}[2J", "x"]])
        #expect(table.render() == "A        B\n\\x1b[2J  x")
    }
}
