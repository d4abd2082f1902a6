import MgpuCore
import MgpuMaster
import MgpuWire
import Testing

/// `mgpu admin node drain` / `resume` through the real MasterState: what runs there finishes, nothing new starts
/// there, the drain outlives a master restart, and resuming lets the waiting job start.
@Suite struct DrainScenarioTests {
    @Test func aDrainedNodeFinishesItsJobsAndTakesNoNewOne() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 2, plan: { work in work.command == "long" ? (100, ExitStatus(code: 0)) : (5, ExitStatus(code: 0)) })
        let running = try await h.submit("long")
        try await h.settle()
        #expect(await h.state(running) == .running)

        let drained = try #require(try await h.master.drainNode("n1", reason: "swap GPU 1", by: "admin"))
        #expect(drained.drainState == "DRAINING" && drained.drain?.reason == "swap GPU 1" && drained.drain?.by == "admin")
        let waiting = try await h.submit("short")
        try await h.settle()
        #expect(await h.state(waiting) == .pending, "a GPU is free there, but the node is drained")
        #expect(await h.state(running) == .running, "what ran there goes on")

        await h.advance(100)
        try await h.settle()
        #expect(await h.state(running) == .completed)
        #expect(await h.master.nodeInfos(now: h.now).first?.drainState == "DRAINED")
        try h.restartMaster()
        try await h.settle()
        #expect(await h.master.nodeInfos(now: h.now).first?.drain?.reason == "swap GPU 1", "kept in the store")
        #expect(await h.state(waiting) == .pending)

        _ = try await h.master.resumeNode("n1", by: "admin")
        try await h.settle()
        #expect(await h.state(waiting) == .running)
        #expect(await h.master.nodeInfos(now: h.now).first?.drain == nil)
        #expect(try await h.master.drainNode("nope", reason: "", by: "admin") == nil)
        await #expect(throws: RequestError.self) { try await h.master.drainNode("n1", reason: "two\nlines", by: "admin") }
    }
}
