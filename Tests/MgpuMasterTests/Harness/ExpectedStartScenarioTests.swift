import MgpuCore
@testable import MgpuMaster
import MgpuWire
import Testing

/// Every waiting job gets an expected start (`squeue --start`), in `mgpu queue`'s reason and in `expectedStart`.
@Suite struct ExpectedStartScenarioTests {
    @Test func everyWaitingJobSaysWhenItShouldStart() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { _ in nil })
        let t0 = h.now
        let running = try await h.submit("a") { $0.timeLimit = 100 }
        try await h.settle()
        let second = try await h.submit("b") { $0.timeLimit = 50 }
        let third = try await h.submit("c") { $0.timeLimit = 10 }
        let cpu = try await h.submit("cpu", request: ResourceRequest(gpusPerNode: 0))
        #expect(await h.state(running) == .running)
        let b = try #require(await h.job(second)), c = try #require(await h.job(third))
        #expect(b.expectedStart == t0 + 100, "the reserved job: when the running one reaches its limit")
        #expect(c.expectedStart == t0 + 150, "the next: after the reserved one's limit")
        #expect(c.note?.hasPrefix("waiting: 1 job of higher priority; expected start ") == true, "\(c.note ?? "")")
        #expect(await h.job(cpu)?.expectedStart == nil)
        let queue = await h.master.queue(finishedWithin: 0)
        #expect(queue.jobs.first { $0.id == third }?.expectedStart == t0 + 150)
    }

    /// On a full cluster the master skips its passes (nothing could start); what a listing says of the waiting jobs
    /// (priority, jobs ahead, expected start) is still about every one of them, the last submitted included.
    @Test func aFullClusterStillSaysWhereEachJobStands() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { _ in nil })
        let t0 = h.now
        _ = try await h.submit("a", user: "alice") { $0.timeLimit = 100 }
        try await h.settle()
        let waiting = [try await h.submit("b", user: "alice") { $0.timeLimit = 50 },
                       try await h.submit("c", user: "alice") { $0.timeLimit = 10 },
                       try await h.submit("d", user: "bob") { $0.timeLimit = 10 }]
        let queue = await h.master.queue(finishedWithin: 0).jobs
        for id in waiting {
            let job = try #require(queue.first { $0.id == id })
            #expect(job.state == .pending)
            #expect(job.priority != nil, "\(id) has its priority")
            #expect(job.expectedStart != nil, "\(id) has an expected start")
        }
        // In submission order (nobody has used anything yet): each after the one before reaches its limit.
        #expect(await h.job(waiting[0])?.expectedStart == t0 + 100)
        let c = try #require(await h.job(waiting[1]))
        #expect(c.note?.hasPrefix("waiting: 1 job of higher priority; expected start ") == true, "\(c.note ?? "")")
        #expect(c.expectedStart == t0 + 150)
        #expect(await h.job(waiting[2])?.note?.hasPrefix("waiting: 2 jobs of higher priority") == true)
        #expect(await h.job(waiting[2])?.expectedStart == t0 + 160)
    }

    /// On a full cluster the liveness tick's pass (every second) is skipped; what listings say of the waiting jobs is
    /// computed again after a change, or once it is `passInfoMaxAge` old, not after every tick.
    @Test func listingsOnAFullClusterRecomputeAfterAChangeNotAfterEveryTick() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { _ in nil })
        _ = try await h.submit("a", user: "alice") { $0.timeLimit = 1000 }
        try await h.settle()
        let b = try await h.submit("b", user: "alice") { $0.timeLimit = 50 }
        _ = await h.master.queueListing(finishedWithin: 0)
        let first = await h.master.policyPasses
        #expect(await h.job(b)?.expectedStart != nil)
        for _ in 0..<5 {
            await h.advance(1)
            _ = await h.master.queueListing(finishedWithin: 0)
        }
        #expect(await h.master.policyPasses == first, "ticks alone: the listing keeps the last pass's figures")
        let c = try await h.submit("c", user: "bob") { $0.timeLimit = 10 }
        _ = await h.master.queueListing(finishedWithin: 0)
        #expect(await h.master.policyPasses == first + 1, "a submission: computed again")
        #expect(await h.job(c)?.expectedStart != nil, "the new job has its expected start")
        await h.advance(MasterState.passInfoMaxAge)
        _ = await h.master.queueListing(finishedWithin: 0)
        #expect(await h.master.policyPasses == first + 2, "past the age limit: computed again")
    }
}
