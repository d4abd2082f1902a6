import MgpuCore
import MgpuMaster
import MgpuWire
import Testing

/// `--preemptible` through the real MasterState and the agent protocol: idle GPUs are used past limits; a job that is
/// not preemptible gets its GPU by stopping one (SIGTERM through the agent), which goes back to the queue with
/// PREEMPTED in its history and later finishes.
@Suite struct PreemptionScenarioTests {
    /// A preemptible job's first run never ends by itself; later runs take 10 s. Other jobs take 5 s.
    static func plan(_ work: WorkItem) -> (Double, MgpuCore.ExitStatus)? {
        if work.command.hasPrefix("spare") { return (work.attempt ?? 0) == 0 ? nil : (10, MgpuCore.ExitStatus(code: 0)) }
        return (5, MgpuCore.ExitStatus(code: 0))
    }

    @Test func aNormalJobStopsAPreemptibleOneWhichRunsAgainLater() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 2, plan: Self.plan)
        try await h.master.setUserPolicy("bob", PolicySettings(maxGPUs: 1))
        let spares = [try await h.submit("spare 1", user: "bob") { $0.preemptible = true },
                      try await h.submit("spare 2", user: "bob") { $0.preemptible = true }]
        try await h.settle()
        #expect(h.agents["n1"]!.running.count == 2, "both run, past bob's limit of 1 GPU: nobody else wants the GPUs")

        await h.advance(1)
        let normal = try await h.submit("train", user: "alice")
        #expect(await h.state(normal) == .pending)
        let stopping = await h.master.queue(finishedWithin: 0).jobs.filter { $0.preemptedBy == normal }
        #expect(stopping.map(\.id) == [spares[1]], "one is stopped, the one started last (equal priorities)")
        try await h.settle()
        let victim = try #require(await h.job(spares[1]))
        #expect(victim.state == .pending && victim.reason == "preempted by job \(normal), requeued (1)")
        #expect(victim.history?.map(\.state) == ["PREEMPTED"] && victim.history?.first?.placement.hasPrefix("n1:gpu") == true)
        #expect(await h.state(normal) == .running, "it took the GPU")
        #expect(await h.state(spares[0]) == .running, "the other preemptible job was left alone")

        await h.advance(5)
        try await h.settle()
        #expect(await h.state(normal) == .completed)
        #expect(await h.state(spares[1]) == .running, "it runs again once the GPU is idle")
        await h.advance(10)
        try await h.settle()
        let done = try #require(await h.job(spares[1]))
        #expect(done.state == .completed && done.requeues == 1 && done.history?.count == 1)
        let attempts = h.agents["n1"]!.started.filter { $0.jobId == spares[1] }.map { $0.attempt ?? 0 }
        #expect(attempts == [0, 1])
    }

    @Test func aCancelledOrFinishedVictimIsNotRequeued() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: Self.plan)
        let spare = try await h.submit("spare", user: "bob") { $0.preemptible = true }
        try await h.settle()
        let normal = try await h.submit("train", user: "alice")
        #expect(await h.job(spare)?.preemptedBy == normal)
        _ = try await h.master.cancel([spare.rawValue])
        try await h.settle()
        #expect(await h.state(spare) == .cancelled, "cancelled while being stopped: it ends")
        #expect(await h.state(normal) == .running)
    }

    @Test func preemptionSurvivesAMasterRestart() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: Self.plan)
        let spare = try await h.submit("spare", user: "bob") { $0.preemptible = true }
        try await h.settle()
        let normal = try await h.submit("train", user: "alice")
        try h.restartMaster()
        #expect(await h.job(spare)?.preemptedBy == normal, "kept in the store")
        try await h.settle()
        let (spareState, normalState) = (await h.state(spare), await h.state(normal))
        #expect(spareState == .pending && normalState == .running)
    }
}
