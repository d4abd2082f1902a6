@testable import MgpuMaster
import MgpuCore
import MgpuWire
import Testing

/// `mgpu queue` lists every job waiting or running, and of those that ended in its window only the most recently
/// ended, saying how many more there are and where they are.
@Suite struct QueueListingTests {
    @Test func onlyTheMostRecentlyEndedJobsAreListed() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { work in work.command == "wait" ? nil : (1, ExitStatus(code: 0)) })
        // 25 jobs end one after another, a second apart; then one runs and one waits.
        var ended: [JobID] = []
        for i in 0..<25 {
            ended.append(try await h.submit("job \(i)"))
            try await h.settle()
            await h.advance(1)
            try await h.settle()
        }
        let running = try await h.submit("wait")
        let waiting = try await h.submit("wait")
        try await h.settle()
        let states = (await h.state(ended[24]), await h.state(running), await h.state(waiting))
        #expect(states.0 == .completed && states.1 == .running && states.2 == .pending)

        let listing = await h.master.queueListing(finishedWithin: 300, endedShown: 20)
        let ids = listing.lines.map { $0[0] }
        #expect(ids == (ended.suffix(20) + [running, waiting]).map(\.rawValue), "the 20 most recently ended, then what runs and waits")
        #expect(listing.endedNotShown == 5)
        #expect(listing.render().contains("… and 5 more jobs ended in the last 5 min: `mgpu history` lists them"))
        // Without a limit (and in the JSON listing) every job of the window is there.
        let all = await h.master.queueListing(finishedWithin: 300)
        #expect(all.lines.count == 27 && all.endedNotShown == 0 && !all.render().contains("more job"))
        #expect(await h.master.queue(finishedWithin: 300).jobs.count == 27)
    }

    /// The ended jobs a listing keeps as they come are those a sort of all of them by their end (latest first, then
    /// the later submission, then the higher id) keeps, in that order: ends repeat (a batch ends in one report), an
    /// array's tasks share its seq, and they come in any order.
    @Test(arguments: 0..<20) func theLastEndedAreThoseASortOfAllKeeps(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed))
        var jobs: [JobID: Job] = [:]
        for n in 1...Int.random(in: 1...300, using: &rng) {
            let id = JobID(number: UInt32(n))
            jobs[id] = Job(id: id, seq: Int64(n / 3), name: "j", user: "u", command: "c", workdir: "/", environment: [:],
                           request: ResourceRequest(gpusPerNode: 1), submitTime: 0)
        }
        let ends = jobs.indices.map {
            (end: Double(Int.random(in: 0..<40, using: &rng)), seq: jobs.values[$0].seq, id: jobs.values[$0].id, index: $0)
        }
        for keep in [0, 1, 5, 20, ends.count - 1, ends.count, ends.count + 3] where keep >= 0 {
            var last = LastEnded(keep: keep)
            for e in ends { last.add(end: e.end, seq: e.seq, id: e.id, index: e.index) }
            let expected = ends.sorted { ($0.end, $0.seq, $0.id) > ($1.end, $1.seq, $1.id) }.prefix(keep)
            #expect(last.kept.map(\.id) == expected.map(\.id), "keep \(keep) of \(ends.count)")
            #expect(last.kept.map(\.index) == expected.map(\.index) && last.seen == ends.count)
        }
        var all = LastEnded(keep: nil)
        for e in ends { all.add(end: e.end, seq: e.seq, id: e.id, index: e.index) }
        #expect(all.kept.map(\.id) == ends.map(\.id) && all.seen == ends.count)
    }

    /// An array's tasks share its submission number: the listing shows them by task index (task 10 after task 9), the
    /// ended ones too, not in the order the master's dictionary holds them.
    @Test func anArraysTasksAreListedByIndex() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 8, plan: { work in work.jobId.arrayIndex! < 4 ? (1, ExitStatus(code: 0)) : nil })
        let id = try await h.submit("task") { $0.array = ArrayRequest(tasks: TaskIndices([.init(first: 0, last: 11)]), maxRunning: nil) }
        try await h.settle()
        await h.advance(1)
        try await h.settle()
        for listing in [await h.master.queueListing(finishedWithin: 300, endedShown: 20),
                        await h.master.queueListing(finishedWithin: 300, endedShown: 2)] {
            let ids = listing.lines.map { $0[0] }.filter { $0.hasPrefix(id.rawValue + "_") && !$0.contains("[") }
            let indices = ids.map { Int($0.split(separator: "_")[1])! }
            #expect(indices == indices.sorted() && indices.count >= 10, "\(ids)")
        }
        let json = await h.master.queue(finishedWithin: 300).jobs.compactMap { $0.id.arrayParent == id ? $0.id.arrayIndex : nil }
        #expect(json.count == 12)
    }
}
