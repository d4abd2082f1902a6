import MgpuCore
import Testing

/// `CapacityLedger`, kept as things change, against `NodeCapacity.build` of the same state after every step of seeded
/// random histories: nodes coming, going, coming back with other GPUs (repeated indices, other models), reporting
/// (only their liveness changes), orphans, drains, leaving; jobs of one to three parts starting and ending, on known
/// nodes and on nodes not (yet) there, with GPUs and CPU-only, two parts on one GPU; GPUs made unavailable and
/// available again; time passing past the node timeout.
@Suite struct CapacityLedgerTests {
    struct World {
        var nodes: [String: Node] = [:]
        var running: [[JobPart]] = []
        var unavailable: [String: Set<Int>] = [:]
        var now = 1000.0

        func built() -> [NodeCapacity] {
            NodeCapacity.build(nodes: Array(nodes.values), activeParts: running, now: now, nodeTimeout: 30,
                               unavailableGPUs: unavailable)
        }
    }

    static let ids = (0..<9).map { "node\($0)" } + ["a", "z"]
    static let models = [("NVIDIA A100-SXM4-80GB", 81920), ("NVIDIA H100 80GB HBM3", 81559), ("Tesla T4", 15360)]

    static func randomNode(_ id: String, now: Double, using random: inout SeededRandom) -> Node {
        let count = Int.random(in: 0...8, using: &random)
        var indices = Array(0..<count)
        if count > 1 && Int.random(in: 0..<4, using: &random) == 0 { indices[count - 1] = indices[0] }   // a repeated index
        let gpus = indices.map { i -> GPU in
            let (name, memory) = models.randomElement(using: &random)!
            return GPU(index: i, uuid: "GPU-\(id)-\(i)", name: name, memoryMB: memory)
        }
        var node = Node(id: id, address: "10.0.0.1", gpus: gpus, cpuSlots: Int.random(in: 0...8, using: &random),
                        now: now - Double.random(in: 0...40, using: &random), incarnation: "i")
        node.orphanGPUs = (0..<count).filter { _ in Int.random(in: 0..<6, using: &random) == 0 }
        node.orphanCPUSlots = Int.random(in: 0...2, using: &random)
        if Int.random(in: 0..<8, using: &random) == 0 { node.left = true }
        if Int.random(in: 0..<8, using: &random) == 0 { node.drain = NodeDrain(reason: "maintenance", by: "root", at: 0) }
        return node
    }

    @Test(arguments: 0..<30)
    func matchesABuildAfterEveryStep(seed: Int) {
        var random = SeededRandom(seed: UInt64(seed) &* 104_729 &+ 17)
        var world = World()
        for _ in 0..<Int.random(in: 0...6, using: &random) {
            let id = Self.ids.randomElement(using: &random)!
            world.nodes[id] = Self.randomNode(id, now: world.now, using: &random)
        }
        for _ in 0..<Int.random(in: 0...3, using: &random) {
            world.running.append([JobPart(rank: 0, nodeId: Self.ids.randomElement(using: &random)!, gpus: [Int.random(in: 0...7, using: &random)])])
        }
        // Starting from a state, as the master makes it when it first needs one.
        var ledger = CapacityLedger(nodes: Array(world.nodes.values), activeParts: world.running, unavailableGPUs: world.unavailable)
        #expect(ledger.capacities(now: world.now, nodeTimeout: 30) == world.built(), "seed \(seed): at start")
        for step in 0..<250 {
            var did = ""
            switch Int.random(in: 0..<20, using: &random) {
            case 0..<3:
                let id = Self.ids.randomElement(using: &random)!
                let node = Self.randomNode(id, now: world.now, using: &random)
                world.nodes[id] = node
                ledger.setNode(node)
                did = "node \(id) set"
            case 3..<7:
                // A report: only its liveness changes (the common case), sometimes its orphans or drain too.
                guard let id = world.nodes.keys.sorted().randomElement(using: &random) else { continue }
                var node = world.nodes[id]!
                node.lastSeen = world.now
                switch Int.random(in: 0..<6, using: &random) {
                case 0: node.orphanGPUs = node.orphanGPUs.isEmpty ? [Int.random(in: 0...7, using: &random)] : []
                case 1: node.orphanCPUSlots = Int.random(in: 0...2, using: &random)
                case 2: node.drain = node.drain == nil ? NodeDrain(reason: "x", by: "root", at: 0) : nil
                case 3: node.left = node.left == true ? nil : true
                default: break
                }
                world.nodes[id] = node
                ledger.setNode(node)
                did = "node \(id) reported"
            case 7:
                guard let id = world.nodes.keys.sorted().randomElement(using: &random) else { continue }
                world.nodes[id] = nil
                ledger.removeNode(id)
                did = "node \(id) removed"
            case 8..<12:
                let parts = (0..<Int.random(in: 1...3, using: &random)).map { rank in
                    JobPart(rank: rank, nodeId: Self.ids.randomElement(using: &random)!,
                            gpus: Int.random(in: 0..<5, using: &random) == 0 ? []
                                : Array(Set((0..<Int.random(in: 1...3, using: &random)).map { _ in Int.random(in: 0...9, using: &random) })).sorted())
                }
                world.running.append(parts)
                ledger.add(parts)
                did = "job started \(parts.map { "\($0.nodeId):\($0.gpus)" })"
            case 12..<16:
                guard !world.running.isEmpty else { continue }
                let parts = world.running.remove(at: Int.random(in: 0..<world.running.count, using: &random))
                ledger.remove(parts)
                did = "job ended \(parts.map { "\($0.nodeId):\($0.gpus)" })"
            case 16..<18:
                let id = Self.ids.randomElement(using: &random)!
                let gpus = Set((0..<Int.random(in: 0...2, using: &random)).map { _ in Int.random(in: 0...7, using: &random) })
                world.unavailable[id] = gpus.isEmpty ? nil : gpus
                ledger.setUnavailable(gpus, node: id)
                did = "unavailable on \(id): \(gpus.sorted())"
            default:
                world.now += Double.random(in: 0...20, using: &random)
                did = "time \(world.now)"
            }
            #expect(ledger.capacities(now: world.now, nodeTimeout: 30) == world.built(), "seed \(seed), step \(step): \(did)")
        }
        // Everything ends and every node goes: nothing is held.
        for parts in world.running { ledger.remove(parts) }
        for id in world.nodes.keys { ledger.removeNode(id) }
        for (id, _) in world.unavailable { ledger.setUnavailable([], node: id) }
        #expect(ledger == CapacityLedger(), "seed \(seed): an empty ledger at the end")
    }
}
