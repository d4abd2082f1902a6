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
        build(nodes: nodes, activeParts: activeJobs.filter(\.isActive).map(\.parts), now: now, nodeTimeout: nodeTimeout,
              unavailableGPUs: unavailableGPUs)
    }

    /// The same from the parts of the running jobs (what the master has at hand without copying its jobs), sorted by
    /// node id; of nodes with the same id, the last. Every scheduling pass starts here: with 1,000 nodes, building a
    /// dictionary of capacities and sorting its values (each move and comparison retaining the capacity's fields)
    /// was 1.7 ms a pass. (An array, not any sequence: a generic parameter is not specialized across modules, and
    /// the runtime then looks up the sequence's type metadata on every step.)
    public static func build(nodes: [Node], activeParts: [[JobPart]], now: Double, nodeTimeout: Double,
                             unavailableGPUs: [String: Set<Int>] = [:]) -> [NodeCapacity] {
        var last: [String: Int] = [:]   // node id -> its last index in `nodes`
        last.reserveCapacity(nodes.count)
        for i in nodes.indices { last[nodes[i].id] = i }
        let order = last.values.sorted { nodes[$0].id < nodes[$1].id }
        var caps: [NodeCapacity] = []
        caps.reserveCapacity(order.count)
        var position: [String: Int] = [:]   // node id -> its capacity's index
        position.reserveCapacity(order.count)
        for i in order {
            let node = nodes[i]
            var busy = Set(node.orphanGPUs)
            if let unavailable = unavailableGPUs[node.id] { busy.formUnion(unavailable) }
            var models: [Int: GPUModel] = [:]
            models.reserveCapacity(node.gpus.count)
            for gpu in node.gpus where models[gpu.index] == nil { models[gpu.index] = GPUModel(name: gpu.name, memoryMB: gpu.memoryMB) }
            position[node.id] = caps.count
            caps.append(NodeCapacity(id: node.id, gpus: node.gpus.map(\.index),
                                     schedulable: node.isResponding(now: now, timeout: nodeTimeout) && node.drain == nil,
                                     busyGPUs: busy, cpuSlots: node.cpuSlots, cpuSlotsUsed: node.orphanCPUSlots, models: models))
        }
        for parts in activeParts {
            for part in parts {
                guard let at = position[part.nodeId] else { continue }
                if part.gpus.isEmpty { caps[at].cpuSlotsUsed += 1 }
                caps[at].busyGPUs.formUnion(part.gpus)
            }
        }
        return caps
    }
}
