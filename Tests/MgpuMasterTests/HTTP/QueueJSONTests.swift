import Foundation
@testable import MgpuMaster
import MgpuCore
import MgpuWire
import Testing

/// The queue's JSON with rows kept from one listing to the next is byte for byte what encoding the whole answer
/// gives, as jobs change (in place, as the master changes them), end, go and come, and as what the master works out
/// about them changes.
@Suite struct QueueJSONTests {
    static func job(_ n: Int, state: JobState = .pending) -> Job {
        var job = Job(id: JobID(number: UInt32(n)), seq: Int64(n), name: "j\(n)", user: "u\(n % 3)", command: "echo \"\(n)\"",
                      workdir: "/tmp", environment: ["A": "1"], request: ResourceRequest(gpusPerNode: 1), submitTime: 100 + Double(n))
        if state != .pending { try! job.transition(to: .running, at: 200) }
        if state.isTerminal { try! job.transition(to: state, at: 300) }
        return job
    }

    @Test func rowsKeptFromListingToListingGiveTheSameBytes() throws {
        let encoder = APIRouter.encoder
        let cache = QueueJSON(encoder: encoder)
        // The master's jobs, changed in place between listings as the master changes them.
        var jobs = (1...50).map { Self.job($0) }
        var notes: [String?] = Array(repeating: "waiting", count: 50)
        var lives: [ListedJob.Live?] = Array(repeating: nil, count: 50)
        let nodes = [NodeInfo]()
        for round in 0..<5 {
            let listed = jobs.indices.map { ListedJob(job: jobs[$0], note: notes[$0], live: lives[$0]) }
            let now = 1000.25 + Double(round)
            let cached = try cache.encode(now: now, jobs: listed, nodes: nodes)
            let whole = QueueResponse(now: now, jobs: listed.map { $0.info() }, nodes: nodes)
            #expect(cached == (try encoder.encode(whole)), "round \(round)")
            #expect(try JSONDecoder().decode(QueueResponse.self, from: cached).jobs == whole.jobs)
            // Changes for the next round: one starts, one ends, one's reason changes in place, one's note and one's
            // priority change, one goes, one comes.
            try jobs[round].transition(to: .running, at: 500)
            notes[round] = nil
            jobs[10 + round] = Self.job(11 + round, state: .completed)
            notes[10 + round] = nil
            jobs[15 + round].reason = "changed in round \(round)"
            notes[20 + round] = "waiting: \(round) jobs of higher priority"
            lives[25 + round] = ListedJob.Live(priority: Priority(value: Double(round), fairShare: 1, age: 0, nice: 0), expectedStart: 2000)
            jobs.remove(at: 30)
            notes.remove(at: 30)
            lives.remove(at: 30)
            jobs.append(Self.job(100 + round))
            notes.append("waiting")
            lives.append(nil)
        }
    }

    /// A row is the same only while its job's fields are the very ones listed: a copy the master changed has fields
    /// of its own, however small the change.
    @Test func aJobChangedInPlaceIsNotTheSameRow() throws {
        var job = Self.job(1)
        let listed = ListedJob(job: job, note: nil, live: nil)
        #expect(listed.sameRow(as: ListedJob(job: job, note: nil, live: nil)))
        #expect(!listed.sameRow(as: ListedJob(job: job, note: "waiting", live: nil)))
        #expect(!listed.sameRow(as: ListedJob(job: job, note: nil, live: ListedJob.Live(expectedStart: 5))))
        job.nice = 1
        #expect(!listed.sameRow(as: ListedJob(job: job, note: nil, live: nil)))
        #expect(listed.job.nice == nil, "the listed job kept its fields")
        #expect(!ListedJob(job: Self.job(2), note: nil, live: nil).sameRow(as: ListedJob(job: Self.job(2), note: nil, live: nil)),
                "equal fields made twice are not taken for the same ones")
    }

    /// A running job's usage over time is in its own info (`mgpu info`, the dashboard's job page) but not in a
    /// listing's row, nor in what a kept row holds (up to 3 KB a running job).
    @Test func aListedRunningJobHoldsNoUsageSeries() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1)
        let id = try await h.submit("train")
        for _ in 0..<4 {
            h.agents["n1"]!.telemetry = NodeTelemetry(time: 0, gpus: [GPUTelemetry(index: 0, utilization: 80, memoryUsedMB: 1000)])
            try await h.settle()
            await h.advance(5)
        }
        try await h.settle()
        #expect(await h.state(id) == .running)
        #expect((await h.job(id)?.usage?.series?.times.count ?? 0) >= 2, "the job's own info has its series")
        let listed = try #require(await h.master.queueRows(finishedWithin: 0).jobs.first { $0.job.id == id })
        #expect(listed.live?.usage != nil && listed.live?.usage?.series == nil)
        #expect(listed.info().usage?.gpuSeconds ?? 0 > 0)
    }
}
