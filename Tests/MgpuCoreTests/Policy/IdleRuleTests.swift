import MgpuCore
import Testing

/// When a running job's GPUs count as idle, and what that calls for.
@Suite struct IdleRuleTests {
    @Test func idleSinceTheFirstQuietSampleUntilAnyGPUIsBusy() {
        var rule = IdleRule()
        rule.threshold = 5
        var since: Double? = nil
        since = rule.since(since, utilizations: [0, 4.9], now: 100)
        #expect(since == 100)
        since = rule.since(since, utilizations: [1, 2], now: 160)
        #expect(since == 100, "still quiet: since the first quiet sample")
        #expect(rule.since(since, utilizations: [1, nil], now: 170) == nil, "a GPU without a reading is not called idle")
        #expect(rule.since(since, utilizations: [0, 5], now: 200) == nil, "one GPU at the threshold is busy")
        #expect(rule.since(nil, utilizations: [], now: 200) == nil)
    }

    @Test func verdicts() {
        var rule = IdleRule()
        rule.after = 60
        rule.cancelAfter = 120
        #expect(rule.verdict(since: 0, now: 59, interactive: false) == (false, false))
        #expect(rule.verdict(since: 0, now: 60, interactive: false) == (true, false), "warn: marked, never cancelled")
        #expect(rule.verdict(since: 0, now: 1e9, interactive: false) == (true, false))
        rule.action = .cancel
        #expect(rule.verdict(since: 0, now: 119, interactive: false) == (true, false))
        #expect(rule.verdict(since: 0, now: 120, interactive: false) == (true, true))
        #expect(rule.verdict(since: 0, now: 1e9, interactive: true) == (false, false), "interactive jobs are exempt")
        rule.interactive = true
        #expect(rule.verdict(since: 0, now: 1e9, interactive: true) == (true, true))
        rule.cancelAfter = 10
        #expect(rule.verdict(since: 0, now: 30, interactive: false) == (false, false), "never cancelled before it is idle")
    }
}
