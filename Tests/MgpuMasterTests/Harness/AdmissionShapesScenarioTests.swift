import MgpuCore
import MgpuMaster
import MgpuWire
import Testing

/// Admission checks a submission against the nodes' shapes (GPUs, models, CPU slots), which the master keeps between
/// submissions: they must follow every node that comes, goes, or comes back with other GPUs, and stay as they are
/// while nodes only report.
@Suite struct AdmissionShapesScenarioTests {
    func refused(_ h: Harness, _ request: ResourceRequest) async -> Bool {
        do { _ = try await h.submit(request: request); return false } catch { return error is RequestError }
    }

    @Test func theShapesFollowNodesComingGoingAndChanging() async throws {
        let h = try Harness()
        try await h.addNode("a", gpus: 2)
        #expect(await refused(h, ResourceRequest(gpusPerNode: 4)), "no node has 4 GPUs")
        #expect(await refused(h, ResourceRequest(gpusPerNode: 1, nodelist: ["b"])), "no node b")
        try await h.syncAll()
        #expect(await refused(h, ResourceRequest(gpusPerNode: 4)), "reports change no shape")

        // Node a comes back with 8 GPUs (a new agent on it registers).
        try await h.addNode("a", gpus: 8)
        _ = try await h.submit(request: ResourceRequest(gpusPerNode: 4))
        #expect(await refused(h, ResourceRequest(gpusPerNode: 16)))

        // A node comes.
        try await h.addNode("b", gpus: 1)
        _ = try await h.submit(request: ResourceRequest(gpusPerNode: 1, nodelist: ["b"]))
        _ = try await h.submit(request: ResourceRequest(gpusPerNode: 1, nodes: 2))

        // A node goes.
        #expect(try await h.master.removeNode("b", by: "admin"))
        #expect(await refused(h, ResourceRequest(gpusPerNode: 1, nodelist: ["b"])), "b is gone")
        #expect(await refused(h, ResourceRequest(gpusPerNode: 1, nodes: 2)), "one node left")

        // And after a restart, from the store.
        try h.restartMaster()
        _ = try await h.submit(request: ResourceRequest(gpusPerNode: 8))
        #expect(await refused(h, ResourceRequest(gpusPerNode: 1, nodes: 2)))
    }
}
