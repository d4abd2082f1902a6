import Foundation
@testable import MgpuMaster
import Testing

/// The master gives back heap memory after churn: at most every 2 s, only after 500 jobs applied or listed.
@Suite struct HeapTrimmerTests {
    static func residentKB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test func trimsOnceABurstIsOver() {
        var trimmer = HeapTrimmer()
        let idle = trimmer.tick(now: 100)
        #expect(!idle, "no churn, no trim")
        trimmer.churn = 499
        _ = trimmer.tick(now: 101)
        let little = trimmer.tick(now: 102)
        #expect(!little, "too little churn")
        // A burst leaves freed memory behind: many small blocks, one in a hundred kept, so no page at the top of the
        // heap is free and glibc keeps the rest.
        var blocks: [[UInt8]] = (0..<200_000).map { [UInt8](repeating: UInt8($0 & 0xff), count: 400) }
        blocks = blocks.enumerated().filter { $0.offset % 100 == 0 }.map(\.element)
        trimmer.churn = 5000
        let during = trimmer.tick(now: 103)
        #expect(!during, "not while the burst goes on")
        let before = Self.residentKB()
        let trimmed = trimmer.tick(now: 104)
        #expect(trimmed, "the first quiet tick after it: memory went back")
        let after = Self.residentKB()
        #expect(before - after > 20_000, "resident memory fell by \(before - after) KB")
        trimmer.churn = 5000
        _ = trimmer.tick(now: 105)
        let again = trimmer.tick(now: 105.5)
        #expect(!again, "not again within 2 s")
        // Churn that never stops: every 10 s.
        var trims: [Double] = []
        for t in stride(from: 106.0, through: 130, by: 1) {
            trimmer.churn += 1000
            if trimmer.tick(now: t) { trims.append(t) }
        }
        #expect(trims == [115, 126], "about every 10 s: \(trims)")
        #expect(blocks.count == 2000)
    }
}
