/// What the scheduler needs to know about one node: its GPUs, which of them are taken, and its CPU slots.
public struct NodeCapacity: Sendable, Hashable {
    public var id: String
    /// Every GPU index the node has.
    public var gpus: [Int]
    /// False for a node that is DOWN: nothing new goes there.
    public var schedulable: Bool
    /// GPUs held by running jobs, by orphans, or otherwise not available.
    public var busyGPUs: Set<Int>
    /// How many CPU-only jobs may run at once, and how many run now.
    public var cpuSlots: Int
    public var cpuSlotsUsed: Int
    /// Each GPU's model, for `--gpu-type` and `--gpu-mem` (a GPU missing here matches no such request).
    public var models: [Int: GPUModel]

    public init(id: String, gpus: [Int], schedulable: Bool = true, busyGPUs: Set<Int> = [], cpuSlots: Int = 4, cpuSlotsUsed: Int = 0,
                models: [Int: GPUModel] = [:]) {
        self.id = id
        self.gpus = gpus
        self.schedulable = schedulable
        self.busyGPUs = busyGPUs
        self.cpuSlots = cpuSlots
        self.cpuSlotsUsed = cpuSlotsUsed
        self.models = models
    }

    public var freeGPUs: [Int] { gpus.filter { !busyGPUs.contains($0) } }

    /// The GPUs (free or not) a request may use on this node: all of them, unless it asks for a kind.
    public func gpus(for request: ResourceRequest) -> [Int] {
        request.selectsGPUs ? gpus.filter { request.admits(models[$0]) } : gpus
    }
}

extension NodeCapacity {
    /// The capacity of every node, from the nodes and the jobs that hold resources on them.
    public static func build(nodes: [Node], activeJobs: some Sequence<Job>, now: Double, nodeTimeout: Double,
                             unavailableGPUs: [String: Set<Int>] = [:]) -> [NodeCapacity] {
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
}
