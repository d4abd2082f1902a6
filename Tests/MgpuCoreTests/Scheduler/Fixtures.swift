import MgpuCore

func makeJob(_ n: UInt32, gpus: Int = 1, nodes: Int = 1, nodelist: [String]? = nil, pinned: [PinnedGPUs]? = nil,
             gpuIds: [Int]? = nil) -> Job {
    Job(id: JobID(number: n), seq: Int64(n), name: "j\(n)", user: "u", command: "true", workdir: "/", environment: [:],
        request: ResourceRequest(gpusPerNode: gpus, nodes: nodes, nodelist: nodelist, pinned: pinned, gpuIds: gpuIds),
        submitTime: Double(n))
}

func node(_ id: String, gpus: Int, busy: Set<Int> = [], up: Bool = true, slots: Int = 4, slotsUsed: Int = 0) -> NodeCapacity {
    NodeCapacity(id: id, gpus: Array(0..<gpus), schedulable: up, busyGPUs: busy, cpuSlots: slots, cpuSlotsUsed: slotsUsed)
}

extension Plan {
    func placement(_ n: UInt32) -> [Plan.Placement]? {
        assignments.first { $0.job == JobID(number: n) }?.parts
    }
    var started: [UInt32] { assignments.map { UInt32($0.job.rawValue, radix: 16)! } }
}
