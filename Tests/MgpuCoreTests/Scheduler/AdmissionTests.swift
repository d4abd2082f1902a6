import MgpuCore
import Testing

@Suite struct AdmissionTests {
    let cluster = [node("node001", gpus: 2), node("node002", gpus: 4)]

    func refusal(_ request: ResourceRequest, command: String = "true") -> String? {
        Admission.check(command: command, request: request, nodes: cluster)?.message
    }

    @Test func acceptsWhatCanRun() {
        #expect(refusal(ResourceRequest(gpusPerNode: 4)) == nil)
        #expect(refusal(ResourceRequest(gpusPerNode: 0)) == nil)
        #expect(refusal(ResourceRequest(gpusPerNode: 0, pinned: [PinnedGPUs(nodeId: "node002", gpus: [3])])) == nil)
        #expect(refusal(ResourceRequest(gpusPerNode: 2, nodes: 2)) == nil)
    }

    @Test func refusesMoreGPUsThanAnyNodeHas() {
        #expect(refusal(ResourceRequest(gpusPerNode: 5)) == "no node has 5 GPUs (the largest has 4, the cluster 6 in all)")
        #expect(refusal(ResourceRequest(gpusPerNode: 3, nodes: 2))?.contains("only 1 node(s) have that many") == true)
    }

    @Test func refusesUnknownNodesAndGPUs() {
        #expect(refusal(ResourceRequest(pinned: [PinnedGPUs(nodeId: "node009", gpus: [0])])) == "unknown node node009 (known: node001, node002)")
        #expect(refusal(ResourceRequest(pinned: [PinnedGPUs(nodeId: "node001", gpus: [2])])) == "node node001 has no GPU 2 (it has gpu0,1)")
        #expect(refusal(ResourceRequest(pinned: [PinnedGPUs(nodeId: "node001", gpus: [1, 1])])) != nil)
        #expect(refusal(ResourceRequest(gpusPerNode: 1, nodelist: ["nodeX"])) != nil)
    }

    @Test func refusesEmptyCommandsAndAbsurdCounts() {
        #expect(refusal(ResourceRequest(), command: "  \n") == "the command is empty")
        #expect(refusal(ResourceRequest(gpusPerNode: -1)) != nil)
        #expect(refusal(ResourceRequest(gpusPerNode: 1, nodes: 3)) == "the job asks for 3 nodes but the cluster has 2")
        #expect(refusal(ResourceRequest(gpusPerNode: 1, nodes: 0)) != nil)
    }

    @Test func refusesGPUJobsWhenNoNodeIsKnown() {
        #expect(Admission.check(command: "x", request: ResourceRequest(gpusPerNode: 1), nodes: []) != nil)
    }
}
