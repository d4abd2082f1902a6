import MgpuCore
import MgpuMaster
import MgpuWire
import Testing

/// The agent–master protocol's rules, each as a scenario in virtual time: the real `MasterState` over an in-memory
/// store and a manual clock, with simulated agents (`Harness`). No processes, no sleeps.
@Suite struct ProtocolScenarioTests {
    @Test func aSilentNodeIsDownThenItsJobsAreLost() async throws {
        let h = try Harness(nodeTimeout: 30, nodeLostAfter: 600)
        try await h.addNode("n1", gpus: 1)
        let id = try await h.submit()
        try await h.sync("n1")
        #expect(await h.state(id) == .running)
        #expect(h.agents["n1"]!.running[id] != nil)

        await h.advance(31)
        #expect(await h.node("n1")?.state == .down)
        let silent = await h.job(id)
        #expect(silent?.state == .running && silent?.note == "node not responding: n1", "it keeps its GPU meanwhile")

        await h.advance(600)
        let lost = await h.job(id)
        #expect(lost?.state == .nodeFail)
        #expect(lost?.reason?.contains("n1 lost: no heartbeat") == true, "\(lost?.reason ?? "")")
    }

    /// A hung agent (silent, not restarted) that comes back before its node is lost: its job goes on, and a job that
    /// waited for the GPU meanwhile starts only once the first ended.
    @Test func aHungAgentBackInTimeGoesOn() async throws {
        let h = try Harness(nodeTimeout: 1, nodeLostAfter: 4)
        try await h.addNode("n1", gpus: 1, plan: { _ in (3, ExitStatus(code: 0)) })
        let a = try await h.submit()
        try await h.sync("n1")
        let b = try await h.submit()
        await h.advance(2)
        #expect(await h.node("n1")?.state == .down)
        #expect(await h.job(a)?.note == "node not responding: n1")
        try await h.sync("n1")
        #expect(await h.node("n1")?.state == .up)
        #expect(await h.state(a) == .running && h.agents["n1"]!.running.keys.sorted() == [a])
        await h.advance(1)
        try await h.settle()
        #expect(await h.state(a) == .completed)
        #expect(await h.state(b) == .running)
        #expect(h.agents["n1"]!.started.map(\.jobId) == [a, b])
    }

    @Test func anAgentThatRestartsInTimeKeepsItsJob() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1)
        let id = try await h.submit()
        try await h.sync("n1")
        await h.advance(20)
        h.agents["n1"]!.restart(keepingJobs: true)
        try await h.sync("n1")
        try await h.sync("n1")
        #expect(await h.state(id) == .running)
        #expect(h.agents["n1"]!.started.count == 1, "it was not started again")
    }

    /// A restarted agent may have re-adopted parts its supervisors kept running: its node takes no new work until
    /// it has reported what it runs. (Found by the randomized test: a job was started beside a re-adopted part.)
    @Test func aNodeTakesNoWorkUntilItsAgentHasReported() async throws {
        let h = try Harness(nodeTimeout: 10, nodeLostAfter: 20)
        try await h.addNode("n1", gpus: 1)
        let old = try await h.submit { $0.requeue = true }
        try await h.sync("n1")
        await h.advance(21)  // lost: the job goes back to the queue, but its part still runs on n1
        #expect(await h.state(old) == .pending)
        let other = try await h.submit()
        h.agents["n1"]!.restart(keepingJobs: true)
        try await h.register("n1")
        #expect(await h.state(other) == .pending, "nothing placed on n1 at its registration")
        let report = try await h.sync("n1")
        #expect(report.cancel.map(\.jobId) == [old] && report.start.isEmpty, "the old part is stopped, its GPU held")
        #expect(h.agents["n1"]!.busyGPUs == [0])
        try await h.settle()
        #expect(await h.state(other) == .running)
        #expect(h.agents["n1"]!.running.keys.sorted() == [other], "only once the old part is gone")
    }

    @Test func anAgentThatRestartsWithoutTheJobFailsIt() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1)
        let id = try await h.submit()
        try await h.sync("n1")
        h.agents["n1"]!.restart(keepingJobs: false)
        try await h.sync("n1")
        let job = await h.job(id)
        #expect(job?.state == .nodeFail && job?.reason == "the agent on n1 restarted without the job", "\(job?.reason ?? "")")
    }

    /// An agent that comes back after its node was declared lost still runs the part: it is told to stop it, and the
    /// part's GPU stays busy until the agent reports it gone, so no GPU is ever given to two jobs.
    @Test func anAgentBackTooLateStopsItsPartAndHoldsTheGPUUntilItIsGone() async throws {
        let h = try Harness(nodeTimeout: 30, nodeLostAfter: 60)
        try await h.addNode("n1", gpus: 1)
        let first = try await h.submit()
        try await h.sync("n1")
        await h.advance(61)
        #expect(await h.state(first) == .nodeFail)
        let second = try await h.submit()

        let back = try await h.sync("n1")
        #expect(back.cancel.map(\.jobId) == [first], "the ended job is stopped")
        #expect(back.start.isEmpty, "its GPU is not given away while the old part may still hold it")
        #expect(await h.node("n1")?.busyGPUs == [0])
        #expect(await h.state(second) == .pending)
        try await h.sync("n1")  // reports the stopped part ended
        try await h.sync("n1")
        #expect(await h.state(second) == .running)
        #expect(h.agents["n1"]!.running.keys.sorted() == [second], "one job on the GPU at a time")
    }

    @Test func aRequeuedJobRunsAgainElsewhereAndNeverOnTheLostNode() async throws {
        let h = try Harness(nodeTimeout: 10, nodeLostAfter: 30)
        try await h.addNode("n1", gpus: 1, plan: { _ in (100, ExitStatus(code: 0)) })
        let id = try await h.submit { $0.requeue = true }
        try await h.sync("n1")
        try await h.addNode("n2", gpus: 1, plan: { _ in (5, ExitStatus(code: 0)) })
        await h.advance(31)  // n1 is lost; n2 reported within its timeout when it registered...
        #expect(await h.state(id) == .pending)
        #expect(await h.job(id)?.requeues == 1)
        try await h.sync("n2")
        #expect(await h.job(id)?.placementText == "n2:gpu0")
        await h.advance(5)
        try await h.settle()
        #expect(await h.state(id) == .completed)
        #expect(await h.job(id)?.request.excludedNodes == ["n1"])
    }

    @Test func oneFailingRankStopsTheOthersAndNamesItself() async throws {
        let h = try Harness()
        let plan: SimulatedAgent.Plan = { work in work.rank == 1 ? (5, ExitStatus(code: 3)) : nil }
        try await h.addNode("n1", gpus: 1, plan: plan)
        try await h.addNode("n2", gpus: 1, plan: plan)
        let id = try await h.submit(request: ResourceRequest(gpusPerNode: 1, nodes: 2))
        try await h.syncAll()
        #expect(h.agents["n1"]!.running[id] != nil && h.agents["n2"]!.running[id] != nil, "both ranks at once")
        await h.advance(5)
        try await h.sync("n2")
        let terminating = await h.job(id)
        #expect(terminating?.state == .running && terminating?.note?.hasPrefix("terminating") == true)
        let stop = try await h.sync("n1")
        #expect(stop.cancel.map(\.jobId) == [id])
        try await h.settle()
        let job = await h.job(id)
        #expect(job?.state == .failed && job?.exit?.code == 3)
        #expect(job?.reason == "rank 1 on n2: exit code 3", "\(job?.reason ?? "")")
    }

    @Test func aTimeLimitEndsTheJobTimeout() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { _ in (3600, ExitStatus(code: 0)) })
        let id = try await h.submit { $0.timeLimit = 60 }
        try await h.sync("n1")
        #expect(h.agents["n1"]!.started.first?.timeLimit == 60, "the limit travels to the node")
        await h.advance(61)
        try await h.settle()
        #expect(await h.state(id) == .timeout)
    }

    @Test func theMasterRestartsFromItsStore() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { _ in (50, ExitStatus(code: 0)) })
        let running = try await h.submit()
        let waiting = try await h.submit()
        try await h.sync("n1")
        try h.restartMaster()
        #expect(await h.state(running) == .running && h.agents["n1"]!.running[running] != nil)
        #expect(await h.state(waiting) == .pending)
        #expect(await h.node("n1")?.state == .up, "every known node gets a full timeout to report in")
        await h.advance(50)
        try await h.settle()
        #expect(await h.state(running) == .completed)
        #expect(await h.state(waiting) == .running)
        #expect(h.agents["n1"]!.started.map(\.jobId) == [running, waiting])
    }

    /// A requeued two-node job placed again on a node that ran its first attempt starts there; a late report of the
    /// first attempt changes nothing of the second.
    @Test func aRequeuedGangJobStartsAgainWhereItRanAndStaleReportsChangeNothing() async throws {
        let h = try Harness(nodeTimeout: 10, nodeLostAfter: 30)
        try await h.addNode("n1", gpus: 1)
        try await h.addNode("n2", gpus: 1)
        let id = try await h.submit(request: ResourceRequest(gpusPerNode: 1, nodes: 2)) { $0.requeue = true }
        try await h.syncAll()
        #expect(await h.job(id)?.placementText == "n1:gpu0, n2:gpu0")
        try await h.addNode("n3", gpus: 1)
        // n2 goes silent; n1 and n3 keep reporting: n2 is lost, n1 stops its part, the job is requeued and placed again.
        for _ in 0..<6 {
            await h.advance(8)
            try await h.sync("n1")
            try await h.sync("n3")
        }
        #expect(await h.job(id)?.requeues == 1)
        // n1's first attempt was stopped; a report of it that arrives late must not touch the second attempt.
        let stale = FinishedPart(jobId: id, rank: 0, exit: ExitStatus(signal: 15))
        _ = try await h.master.sync(SyncRequest(nodeId: "n1", incarnation: h.agents["n1"]!.incarnation, running: [], finished: [stale], wait: 0))
        try await h.settle()
        let job = await h.job(id)
        #expect(job?.state == .running && job?.placementText == "n1:gpu0, n3:gpu0", "\(job?.state.rawValue ?? "") \(job?.placementText ?? "")")
        #expect(h.agents["n1"]!.started.map(\.attempt) == [nil, 1], "n1 started both attempts")
        #expect(h.agents["n1"]!.running[id]?.work.attempt == 1)
    }

    /// A commit that fails (a full disk) changes nothing: the agent's report is refused whole, and taken whole when it
    /// comes again.
    @Test func aFailedCommitChangesNothing() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { _ in (1, ExitStatus(code: 0)) })
        let id = try await h.submit()
        try await h.sync("n1")
        await h.advance(1)
        h.store.failNextCommits(1)
        await #expect(throws: (any Error).self) { try await h.sync("n1") }
        #expect(await h.state(id) == .running, "nothing applied")
        #expect(h.agents["n1"]!.running[id] != nil, "nothing acknowledged: the agent still has the part to report")
        try await h.settle()
        #expect(await h.state(id) == .completed)
        #expect(h.agents["n1"]!.finished.isEmpty)
    }
}

@Suite struct DependencyScenarioTests {
    @Test func afterokWaitsForSuccessAndANeverSatisfiedDependencyCancels() async throws {
        let h = try Harness()
        // Job "fails" exits 3 after 10 s; everything else completes after 10 s.
        try await h.addNode("n1", gpus: 4, plan: { work in (10, ExitStatus(code: work.command == "fails" ? 3 : 0)) })
        let first = try await h.submit("ok")
        let failing = try await h.submit("fails")
        let then = try await h.submit("then") { $0.dependencies = [Dependency(kind: .afterok, jobs: [first])] }
        let never = try await h.submit("never") { $0.dependencies = [Dependency(kind: .afterok, jobs: [failing])] }
        let rescue = try await h.submit("rescue") { $0.dependencies = [Dependency(kind: .afternotok, jobs: [failing])] }
        let any = try await h.submit("any") { $0.dependencies = [Dependency(kind: .afterany, jobs: [first, failing])] }
        let chained = try await h.submit("chained") { $0.dependencies = [Dependency(kind: .afterok, jobs: [never])] }
        try await h.sync("n1")
        #expect(await h.state(then) == .pending, "GPUs are free, but its dependency does not hold yet")
        #expect(await h.job(then)?.note == "waiting for job \(first) to complete successfully")
        #expect(Set(h.agents["n1"]!.started.map(\.jobId)) == [first, failing])
        await h.advance(10)
        try await h.sync("n1")  // the report of the two ends: one pass
        #expect(await h.job(chained)?.reason == "dependency never satisfied: job \(never) ended CANCELLED",
                "a cancellation breaks the jobs that wait on it, at once")
        try await h.settle()
        let states = [await h.state(then), await h.state(rescue), await h.state(any)]
        #expect(states == [.running, .running, .running])
        let cancelled = await h.job(never)
        #expect(cancelled?.state == .cancelled && cancelled?.reason == "dependency never satisfied: job \(failing) ended FAILED",
                "\(cancelled?.reason ?? "")")
        await #expect(throws: RequestError.self) {
            _ = try await h.submit("orphan") { $0.dependencies = [Dependency(kind: .afterok, jobs: [JobID(number: 0xDEAD)])] }
        }
    }
}

@Suite struct ReservationScenarioTests {
    /// A two-node job whose rank on n2 has ended still holds n2's GPU until the whole job ends: a job that can run only
    /// on n2 is expected to start when the two-node job's time limit is up, not never.
    @Test func anEndedRankHoldsItsGPUUntilTheJobEnds() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { _ in (1000, ExitStatus(code: 0)) })
        try await h.addNode("n2", gpus: 1, plan: { _ in (10, ExitStatus(code: 0)) })
        let gang = try await h.submit(request: ResourceRequest(gpusPerNode: 1, nodes: 2)) { $0.timeLimit = 100 }
        try await h.settle()
        await h.advance(10)
        try await h.settle()
        let running = await h.job(gang)
        #expect(running?.state == .running && running?.parts.first { $0.nodeId == "n2" }?.exit != nil, "rank on n2 ended")
        let waiting = try await h.submit(request: ResourceRequest(gpusPerNode: 1, nodelist: ["n2"])) { $0.timeLimit = 50 }
        let start = try #require(running?.startTime)
        #expect(await h.job(waiting)?.expectedStart == start + 100)
    }
}
