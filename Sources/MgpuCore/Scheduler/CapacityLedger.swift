/// Every node's capacity, kept and changed as jobs start and end and nodes change, instead of built again from every
/// node and running job by each scheduling pass (with 1,000 nodes of 8 GPUs that build was 1.3-1.6 ms of every pass,
/// and a pass follows nearly every submission and every report of a job's end).
///
/// `NodeCapacity.build` stays the definition: after any sequence of changes, `capacities(now:nodeTimeout:)` equals
/// `build` of the same nodes, running parts and unavailable GPUs (tested on seeded random sequences; the master also
/// compares the two once a second and goes back to a build if they ever differ).
///
/// Like `build`, it counts a part on a node it does not know (yet), and GPUs a node's telemetry made unavailable, as
/// soon as that node is there; and a node holds the union of its orphans, its unavailable GPUs and its parts' GPUs,
/// whether or not it has GPUs of those indices.
public struct CapacityLedger: Sendable, Equatable {
    /// The capacities, sorted by node id; `schedulable` as of the last `capacities(now:nodeTimeout:)`.
    private var caps: [NodeCapacity] = []
    /// What `schedulable` is made of, beside each capacity.
    private var liveness: [Liveness] = []
    /// Node id -> its index in `caps`.
    private var position: [String: Int] = [:]
    /// What the nodes themselves hold: their orphans (GPUs and CPU slots).
    private var orphanGPUs: [String: [Int]] = [:]
    private var orphanCPUSlots: [String: Int] = [:]
    /// Per node id, known or not: how many running parts hold each GPU index, how many CPU-only parts run.
    private var held: [String: [Int: Int]] = [:]
    private var cpuParts: [String: Int] = [:]
    /// Per node id, known or not: the GPUs its telemetry says are not to be used.
    private var unavailable: [String: Set<Int>] = [:]

    private struct Liveness: Sendable, Equatable {
        var lastSeen: Double
        var left: Bool
        var drained: Bool
    }

    public init() {}

    /// The ledger of these nodes (of repeated ids, the last), running parts and unavailable GPUs.
    public init(nodes: [Node], activeParts: [[JobPart]], unavailableGPUs: [String: Set<Int>] = [:]) {
        unavailable = unavailableGPUs.filter { !$0.value.isEmpty }
        for parts in activeParts { add(parts) }
        for node in nodes { setNode(node) }
    }

    /// Adds a node, or takes a node's new record (its GPUs, CPU slots, orphans, drain, liveness).
    public mutating func setNode(_ node: Node) {
        let live = Liveness(lastSeen: node.lastSeen, left: node.left == true, drained: node.drain != nil)
        if let at = position[node.id] {
            liveness[at] = live
            // The common case, a report: nothing the capacity holds has changed.
            if caps[at].cpuSlots == node.cpuSlots && orphanGPUs[node.id] == node.orphanGPUs
                && orphanCPUSlots[node.id] == node.orphanCPUSlots && Self.sameGPUs(caps[at], node.gpus) {
                return
            }
            orphanGPUs[node.id] = node.orphanGPUs
            orphanCPUSlots[node.id] = node.orphanCPUSlots
            caps[at] = makeCapacity(node)
            return
        }
        orphanGPUs[node.id] = node.orphanGPUs
        orphanCPUSlots[node.id] = node.orphanCPUSlots
        let at = Self.insertionPoint(of: node.id, in: caps)
        caps.insert(makeCapacity(node), at: at)
        liveness.insert(live, at: at)
        for i in at..<caps.count { position[caps[i].id] = i }
    }

    /// Forgets a node (its parts and unavailable GPUs stay counted, for when it comes back, as `build` would).
    public mutating func removeNode(_ id: String) {
        guard let at = position.removeValue(forKey: id) else { return }
        caps.remove(at: at)
        liveness.remove(at: at)
        orphanGPUs[id] = nil
        orphanCPUSlots[id] = nil
        for i in at..<caps.count { position[caps[i].id] = i }
    }

    /// A node's telemetry changed which of its GPUs are unavailable.
    public mutating func setUnavailable(_ gpus: Set<Int>, node id: String) {
        guard gpus != (unavailable[id] ?? []) else { return }
        unavailable[id] = gpus.isEmpty ? nil : gpus
        refreshBusy(id)
    }

    /// A job's parts started running (they hold their GPUs, or a CPU slot each).
    public mutating func add(_ parts: [JobPart]) {
        for part in parts {
            if part.gpus.isEmpty {
                cpuParts[part.nodeId, default: 0] += 1
            } else {
                for gpu in part.gpus { held[part.nodeId, default: [:]][gpu, default: 0] += 1 }
            }
            refreshBusy(part.nodeId)
        }
    }

    /// A job's parts stopped running (exactly the parts once added).
    public mutating func remove(_ parts: [JobPart]) {
        for part in parts {
            if part.gpus.isEmpty {
                let left = (cpuParts[part.nodeId] ?? 0) - 1
                cpuParts[part.nodeId] = left > 0 ? left : nil
            } else {
                for gpu in part.gpus {
                    let left = (held[part.nodeId]?[gpu] ?? 0) - 1
                    held[part.nodeId]?[gpu] = left > 0 ? left : nil
                }
                if held[part.nodeId]?.isEmpty == true { held[part.nodeId] = nil }
            }
            refreshBusy(part.nodeId)
        }
    }

    /// The capacities as kept, sorted by node id: every node's GPUs, models, CPU slots and what holds them are
    /// current; `schedulable` is as of the last `capacities(now:nodeTimeout:)` (what admission reads, which looks at
    /// nothing time changes).
    public var shapes: [NodeCapacity] { caps }

    /// The capacities, sorted by node id, as `NodeCapacity.build` makes them at `now`.
    public mutating func capacities(now: Double, nodeTimeout: Double) -> [NodeCapacity] {
        for i in caps.indices {
            let live = liveness[i]
            let schedulable = now - live.lastSeen <= nodeTimeout && !live.left && !live.drained
            if caps[i].schedulable != schedulable { caps[i].schedulable = schedulable }
        }
        return caps
    }

    // MARK: Helpers

    private func makeCapacity(_ node: Node) -> NodeCapacity {
        var models: [Int: GPUModel] = [:]
        models.reserveCapacity(node.gpus.count)
        for gpu in node.gpus where models[gpu.index] == nil { models[gpu.index] = GPUModel(name: gpu.name, memoryMB: gpu.memoryMB) }
        // `schedulable` is set by `capacities(now:nodeTimeout:)`.
        return NodeCapacity(id: node.id, gpus: node.gpus.map(\.index), schedulable: false, busyGPUs: busy(node.id),
                            cpuSlots: node.cpuSlots, cpuSlotsUsed: (orphanCPUSlots[node.id] ?? 0) + (cpuParts[node.id] ?? 0),
                            models: models)
    }

    private func busy(_ id: String) -> Set<Int> {
        var busy = Set(orphanGPUs[id] ?? [])
        if let unavailable = unavailable[id] { busy.formUnion(unavailable) }
        if let held = held[id] { busy.formUnion(held.keys) }
        return busy
    }

    private mutating func refreshBusy(_ id: String) {
        guard let at = position[id] else { return }
        caps[at].busyGPUs = busy(id)
        caps[at].cpuSlotsUsed = (orphanCPUSlots[id] ?? 0) + (cpuParts[id] ?? 0)
    }

    /// Whether a capacity was made from these GPUs (indices in order, and each index's first model).
    private static func sameGPUs(_ cap: NodeCapacity, _ gpus: [GPU]) -> Bool {
        guard cap.gpus.count == gpus.count else { return false }
        for (i, gpu) in gpus.enumerated() {
            guard cap.gpus[i] == gpu.index else { return false }
            if let model = cap.models[gpu.index], model.name == gpu.name, model.memoryMB == gpu.memoryMB { continue }
            // A repeated index keeps its first model: only the first of them must match.
            if gpus[..<i].contains(where: { $0.index == gpu.index }) { continue }
            return false
        }
        return true
    }

    private static func insertionPoint(of id: String, in caps: [NodeCapacity]) -> Int {
        var low = 0, high = caps.count
        while low < high {
            let mid = (low + high) / 2
            if caps[mid].id < id { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
