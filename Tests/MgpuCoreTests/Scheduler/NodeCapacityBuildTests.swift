import MgpuCore
import Testing

/// `NodeCapacity.build`, which every scheduling pass starts from, against the plain version it replaced (a
/// dictionary of capacities by id, its values sorted), on seeded random clusters: nodes down, drained, left, with
/// orphans, GPUs unavailable, repeated ids and GPU indices; jobs running, pending or ended, on known and unknown
/// nodes, with GPUs and CPU-only.
@Suite struct NodeCapacityBuildTests {
    static func plain(nodes: [Node], activeJobs: [Job], now: Double, nodeTimeout: Double,
                      unavailableGPUs: [String: Set<Int>]) -> [NodeCapacity] {
        var byId: [String: NodeCapacity] = [:]
        for node in nodes {
            var busy = Set(node.orphanGPUs)
            busy.formUnion(unavailableGPUs[node.id] ?? [])
            byId[node.id] = NodeCapacity(id: node.id, gpus: node.gpus.map(\.index),
                                         schedulable: node.isResponding(now: now, timeout: nodeTimeout) && node.drain == nil,
                                         busyGPUs: busy, cpuSlots: node.cpuSlots, cpuSlotsUsed: node.orphanCPUSlots,
                                         models: Dictionary(node.gpus.map { ($0.index, GPUModel(name: $0.name, memoryMB: $0.memoryMB)) },
                                                            uniquingKeysWith: { a, _ in a }))
        }
        for job in activeJobs where job.isActive {
            for part in job.parts where byId[part.nodeId] != nil {
                if part.gpus.isEmpty { byId[part.nodeId]!.cpuSlotsUsed += 1 }
                byId[part.nodeId]!.busyGPUs.formUnion(part.gpus)
            }
        }
        return byId.values.sorted { $0.id < $1.id }
    }

    @Test func matchesThePlainBuild() {
        var random = SeededRandom(seed: 1124)
        let models = ["NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3", "Tesla T4"]
        for round in 0..<300 {
            let ids = (0..<Int.random(in: 1...12, using: &random)).map { "n\($0)" }
            let nodes: [Node] = (0..<Int.random(in: 0...14, using: &random)).map { _ in
                let id = ids.randomElement(using: &random)!   // ids may repeat: the last one counts
                let gpuCount = Int.random(in: 0...8, using: &random)
                var indices = Array(0..<gpuCount)
                if gpuCount > 1 && Bool.random(using: &random) { indices[1] = indices[0] }   // a repeated index: the first counts
                var node = Node(id: id, address: "10.0.0.1",
                                gpus: indices.map { GPU(index: $0, uuid: "GPU-\(id)-\($0)", name: models.randomElement(using: &random)!,
                                                        memoryMB: [16384, 81920].randomElement(using: &random)!) },
                                cpuSlots: Int.random(in: 0...8, using: &random), now: Double.random(in: 0...100, using: &random),
                                incarnation: "i")
                node.orphanGPUs = (0..<gpuCount).filter { _ in Int.random(in: 0..<6, using: &random) == 0 }
                node.orphanCPUSlots = Int.random(in: 0...2, using: &random)
                if Int.random(in: 0..<8, using: &random) == 0 { node.left = true }
                if Int.random(in: 0..<8, using: &random) == 0 { node.drain = NodeDrain(reason: "maintenance", by: "root", at: 0) }
                return node
            }
            let jobs: [Job] = (0..<Int.random(in: 0...20, using: &random)).map { n in
                var job = makeJob(UInt32(n + 1))
                job.state = [.running, .running, .running, .pending, .completed].randomElement(using: &random)!
                job.parts = (0..<Int.random(in: 0...3, using: &random)).map { rank in
                    JobPart(rank: rank, nodeId: Bool.random(using: &random) ? ids.randomElement(using: &random)! : "gone",
                            gpus: Bool.random(using: &random) ? [] : [Int.random(in: 0...7, using: &random)])
                }
                return job
            }
            var unavailable: [String: Set<Int>] = [:]
            for id in ids where Int.random(in: 0..<4, using: &random) == 0 { unavailable[id] = [Int.random(in: 0...7, using: &random)] }
            let now = Double.random(in: 0...150, using: &random)
            let expected = Self.plain(nodes: nodes, activeJobs: jobs, now: now, nodeTimeout: 30, unavailableGPUs: unavailable)
            #expect(NodeCapacity.build(nodes: nodes, activeJobs: jobs, now: now, nodeTimeout: 30, unavailableGPUs: unavailable) == expected,
                    "round \(round)")
            // As the master calls it: the running jobs' parts.
            let parts = jobs.filter { $0.state == .running }.map(\.parts)
            #expect(NodeCapacity.build(nodes: nodes, activeParts: parts, now: now, nodeTimeout: 30, unavailableGPUs: unavailable) == expected,
                    "round \(round), from parts")
        }
    }
}
