import Foundation
import MgpuCore
import MgpuWire
import Testing

/// The accounting record, `mgpu report`'s sums, and the CSV a spreadsheet or `mgpu sim` reads.
@Suite struct HistoryRenderingTests {
    func job(_ n: UInt32, user: String, parts: [JobPart], state: JobState = .completed, submit: Double = 0, start: Double = 10,
             end: Double = 3610, usage: JobUsage? = nil) -> Job {
        var job = Job(id: JobID(number: n), seq: Int64(n), name: "j\(n)", user: user, command: "true", workdir: "/", environment: [:],
                      request: ResourceRequest(gpusPerNode: parts.first?.gpus.count ?? 0, nodes: max(1, parts.count)), submitTime: submit)
        try? job.transition(to: .running, at: start)
        job.parts = parts
        try? job.transition(to: state, at: end)
        job.usage = usage
        return job
    }

    @Test func usageIntegratesSamples() {
        var usage = JobUsage()
        let busy = GPUTelemetry(index: 0, utilization: 90, memoryUsedMB: 1000, powerW: 300)
        let idle = GPUTelemetry(index: 1, utilization: 10, memoryUsedMB: 3000, powerW: 60)
        usage.add([busy, idle], seconds: 36)
        usage.add([busy], seconds: 0)  // nothing
        usage.add([GPUTelemetry(index: 0)], seconds: 10)  // no readings: no energy, not sampled
        #expect(abs(usage.energyWh - (300 + 60) * 36 / 3600) < 1e-9)
        #expect(usage.meanUtilization == 50 && usage.peakUtilization == 90 && usage.peakMemoryMB == 3000)
        var other = JobUsage()
        other.gpuSeconds = 5
        other.gpuModels = ["B"]
        var first = usage
        first.gpuModels = ["A"]
        let both = first.merged(other)
        #expect(both.gpuSeconds == 5 && both.gpuModels == ["A", "B"] && both.energyWh == usage.energyWh)
    }

    @Test func reportSumsPerKeyAndSplitsMultiNodeJobs() {
        var usage = JobUsage()
        usage.gpuSeconds = 3 * 3600
        usage.energyWh = 900
        usage.busyGPUSeconds = 1.5 * 3600
        usage.sampledGPUSeconds = 3 * 3600
        usage.gpuModels = ["A100"]
        let records = [
            job(1, user: "alice", parts: [JobPart(rank: 0, nodeId: "n1", gpus: [0, 1]), JobPart(rank: 1, nodeId: "n2", gpus: [0])], usage: usage),
            job(2, user: "bob", parts: [JobPart(rank: 0, nodeId: "n2", gpus: [])], state: .failed, submit: 0, start: 100),
        ].map { HistoryRecord(job: $0, account: $0.user == "alice" ? "vision" : "default") }
        let byNode = ReportResponse(records: records, since: 0, until: 1e10, by: .node)
        #expect(byNode.rows.map(\.key) == ["n1", "n2"])
        #expect(byNode.rows[0].gpuHours == 2 && byNode.rows[1].gpuHours == 1, "3 GPU-hours split 2:1 by GPUs held")
        #expect(abs(byNode.rows[0].energyKWh - 0.6) < 1e-9 && byNode.rows[1].jobs == 2 && byNode.rows[1].failures == 1)
        let byUser = ReportResponse(records: records, since: 0, until: 1e10, by: .user)
        #expect(byUser.rows.map(\.key) == ["alice", "bob"] && byUser.rows[0].meanUtilization == 50 && byUser.rows[1].meanUtilization == nil)
        #expect(byUser.rows[1].waitMean == 100)
        #expect(ReportResponse(records: records, since: 0, until: 1e10, by: .gpuType).rows.map(\.key) == ["A100", "cpu"])
        #expect(ReportResponse(records: records, since: 0, until: 1e10, by: .account).rows.map(\.key) == ["vision", "default"])
    }

    @Test func csvFieldsAreQuotedAndNeverFormulas() {
        var named = job(1, user: "alice", parts: [JobPart(rank: 0, nodeId: "n1", gpus: [0])])
        named.name = "=HYPERLINK(\"x\"), b"
        let csv = HistoryResponse(records: [HistoryRecord(job: named, account: "default")]).renderCSV()
        let row = csv.split(separator: "\n")[1]
        #expect(row.contains("\"'=HYPERLINK(\"\"x\"\"), b\""), "\(row)")
        #expect(row.hasPrefix("00000001,alice,0,1,3600,0,"), "the columns mgpu sim reads come first: \(row)")
    }
}

@Suite struct NotifyURLTests {
    @Test(arguments: ["http://127.0.0.1:8080/hook", "https://hooks.slack.com/services/T0/B0/xyz", "HTTP://host", "http://[::1]:9/x?y=1#z",
                      "http://host:65535", "https://a.b-c_d~e/%41"])
    func accepted(_ url: String) { #expect(JobEvent.validURL(url), "\(url)") }

    @Test(arguments: ["ftp://host/x", "http://", "http://:80", "http://127.0.0.1:70000/", "http://host:0", "http://host:99999999999",
                      "http://user@host/", "http://ho st/", "http://host/\u{7f}", "http://hö.st/", "javascript:alert(1)", "http://host:80x/",
                      "http://" + String(repeating: "a", count: 2100)])
    func refused(_ url: String) { #expect(!JobEvent.validURL(url), "\(url)") }
}

@Suite struct UsageSeriesTests {
    @Test func pointsStayInOrderAndAtMostTheLimit() {
        var usage = JobUsage()
        for t in (0..<1000).reversed() where t % 3 != 0 {
            usage.record([GPUTelemetry(index: 0, utilization: Double(t % 100) + 0.123, memoryUsedMB: t)], at: Double(t))
        }
        let s = usage.series!
        #expect(s.times.count <= UsageSeries.maxPoints && s.times.count > UsageSeries.maxPoints / 2)
        #expect(s.times == s.times.sorted() && s.utilization.count == s.times.count && s.memoryMB.count == s.times.count)
        #expect(s.memoryMB.max() == 998 && s.utilization.allSatisfy { ($0 * 10).rounded() == $0 * 10 }, "peaks kept, rounded to 0.1")
        var two = JobUsage()
        two.record([GPUTelemetry(index: 0, utilization: 50, memoryUsedMB: 1)], at: 5000)
        #expect(usage.merged(two).series!.times.last == 5000, "a later run's points follow")
        var none = JobUsage()
        none.record([GPUTelemetry(index: 0)], at: 1)
        #expect(none.series == nil, "no reading, no point")
    }
}
