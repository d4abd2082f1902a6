import MgpuCore
import MgpuMaster
import MgpuWire
import Testing

/// GPUs that are neither busy with a job nor free (a process outside mgpu holds them, or the driver says they are
/// unhealthy): a job waiting for GPUs says so, and stops saying so when they come back or their node goes.
@Suite struct UnavailableGPUScenarioTests {
    static func sample(outside: [Int] = [], unhealthy: [Int] = [], gpus: Int = 2) -> NodeTelemetry {
        NodeTelemetry(time: 0, gpus: (0..<gpus).map { i in
            var gpu = GPUTelemetry(index: i, inUseOutside: outside.contains(i))
            if unhealthy.contains(i) { gpu.unhealthy = "row remapping failed" }
            return gpu
        })
    }

    @Test(arguments: [SharingPolicy.Order.fifo, .fairShare])
    func aWaitingJobSaysWhatKeepsGPUsFromIt(order: SharingPolicy.Order) async throws {
        let h = try Harness { $0.policy.order = order }
        try await h.addNode("n1", gpus: 2)
        try await h.addNode("n2", gpus: 2)
        h.agents["n1"]!.telemetry = Self.sample(outside: [0], unhealthy: [1])
        // n2 also reports a GPU 7 it never registered, held outside mgpu: not one of its GPUs, not counted.
        h.agents["n2"]!.telemetry = Self.sample(outside: [0, 1, 7], gpus: 8)
        try await h.settle()
        func note(_ id: JobID) async -> String { await h.job(id)?.note ?? "" }
        let waiting = try await h.submit()
        try await h.settle()
        #expect(await h.state(waiting) == .pending)
        #expect(await note(waiting) == "waiting for 1 GPU (3 GPUs in use outside mgpu, 1 unhealthy)")
        let cpu = try await h.submit(request: ResourceRequest(gpusPerNode: 0))
        try await h.settle()
        #expect(await h.state(cpu) == .running, "CPU-only jobs do not wait for GPUs")

        // n1's outside process lets go: the job starts there; the next one waits, and its note counts what is left.
        h.agents["n1"]!.telemetry = Self.sample(unhealthy: [1])
        await h.advance(1)
        try await h.settle()
        #expect(await h.state(waiting) == .running)
        let next = try await h.submit()
        try await h.settle()
        let nextNote = await note(next)
        #expect(nextNote.hasPrefix("waiting for 1 GPU (2 GPUs in use outside mgpu, 1 unhealthy)"), "\(nextNote)")
        // n2 is removed: only n1's unhealthy GPU is left.
        #expect(try await h.master.removeNode("n2", by: "admin"))
        h.agents["n2"] = nil
        await h.advance(1)
        try await h.settle()
        let afterRemoval = await note(next)
        #expect(afterRemoval.hasPrefix("waiting for 1 GPU (1 GPU unhealthy)"), "\(afterRemoval)")
        // n1's GPU is healthy again: the job starts, and a waiting job's note is the request alone.
        h.agents["n1"]!.telemetry = Self.sample()
        await h.advance(1)
        try await h.settle()
        #expect(await h.state(next) == .running)
        let last = try await h.submit()
        try await h.settle()
        let lastNote = await note(last)
        #expect(lastNote.hasPrefix("waiting for 1 GPU") && !lastNote.contains("("), "\(lastNote)")
    }

    /// Only nodes a job could get count: not one that is DOWN or drained; a node that registers again with other GPUs
    /// is counted against those; a job that names its exact GPUs is told only about them.
    @Test func onlyNodesThatAreUpAndNotDrainedCount() async throws {
        let h = try Harness(nodeTimeout: 30) { $0.policy.order = .fifo }
        try await h.addNode("n1", gpus: 2)
        try await h.addNode("n2", gpus: 2)
        h.agents["n1"]!.telemetry = Self.sample(outside: [0, 1])
        h.agents["n2"]!.telemetry = Self.sample(outside: [0, 1])
        try await h.settle()
        let waiting = try await h.submit()
        try await h.settle()
        func note() async -> String { await h.job(waiting)?.note ?? "" }
        #expect(await note() == "waiting for 1 GPU (4 GPUs in use outside mgpu)")

        // n2 falls silent past the node timeout (n1 keeps reporting): DOWN, its GPUs are nobody's to wait for.
        await h.advance(20)
        try await h.sync("n1")
        #expect(await note() == "waiting for 1 GPU (4 GPUs in use outside mgpu)")
        await h.advance(11)
        #expect(await h.node("n2")?.state == .down)
        #expect(await note() == "waiting for 1 GPU (2 GPUs in use outside mgpu)")
        try await h.sync("n2")
        #expect(await note() == "waiting for 1 GPU (4 GPUs in use outside mgpu)", "n2 answers again")

        _ = try await h.master.drainNode("n1", reason: "swap GPU 1", by: "admin")
        #expect(await note() == "waiting for 1 GPU (2 GPUs in use outside mgpu)", "a drained node takes no job")
        _ = try await h.master.resumeNode("n1", by: "admin")
        #expect(await note() == "waiting for 1 GPU (4 GPUs in use outside mgpu)")

        // n2's agent comes back with one GPU and no new sample yet: what it said before counts only for that GPU.
        h.agents["n2"]!.telemetry = nil
        h.agents["n2"]!.gpus.removeLast()
        h.agents["n2"]!.restart()
        try await h.sync("n2")
        #expect(await h.node("n2")?.gpus.count == 1)
        #expect(await note() == "waiting for 1 GPU (3 GPUs in use outside mgpu)")

        let pinned = try await h.submit(request: ResourceRequest(gpusPerNode: 1, pinned: [PinnedGPUs(nodeId: "n1", gpus: [0])]))
        try await h.settle()
        #expect(await h.job(pinned)?.note == "waiting for n1:gpu0")
    }
}
