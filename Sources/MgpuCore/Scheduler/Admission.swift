/// Submit-time checks: a request that can never run is refused at once with a message the user can act on.
public enum Admission {
    public static func check(command: String, request: ResourceRequest, nodes: [NodeCapacity]) -> RequestError? {
        if command.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" }) {
            return RequestError("the command is empty")
        }
        if request.gpusPerNode < 0 { return RequestError("--gpus must be 0 or more, got \(request.gpusPerNode)") }
        if request.nodes < 1 { return RequestError("--nodes must be 1 or more, got \(request.nodes)") }
        // Capacities by id only for the requests that name nodes, and counts taken in place: with 1,000 nodes, copying
        // every capacity into a dictionary and a filtered array was most of admitting a job.
        if let pinned = request.pinned {
            let byId = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            var seen = Set<String>()
            for pin in pinned {
                guard let node = byId[pin.nodeId] else {
                    return RequestError("unknown node \(pin.nodeId) (known: \(knownList(nodes)))")
                }
                if !seen.insert(pin.nodeId).inserted { return RequestError("node \(pin.nodeId) is listed twice") }
                if Set(pin.gpus).count != pin.gpus.count { return RequestError("a GPU of \(pin.nodeId) is listed twice") }
                for g in pin.gpus where !node.gpus.contains(g) {
                    return RequestError("node \(pin.nodeId) has no GPU \(g) (it has \(node.gpus.isEmpty ? "none" : "gpu" + GPUList.compact(node.gpus)))")
                }
            }
            return nil
        }
        var pool = nodes
        if let list = request.nodelist {
            let byId = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            if Set(list).count != list.count { return RequestError("a node is listed twice in --nodelist") }
            for id in list where byId[id] == nil {
                return RequestError("unknown node \(id) (known: \(knownList(nodes)))")
            }
            if list.count < request.nodes {
                return RequestError("--nodes \(request.nodes) needs at least \(request.nodes) nodes in --nodelist, got \(list.count)")
            }
            pool = list.compactMap { byId[$0] }
        }
        if request.nodes > pool.count {
            return RequestError("the job asks for \(request.nodes) nodes but the cluster has \(pool.count)")
        }
        if let ids = request.gpuIds {
            if ids.isEmpty { return RequestError("--gpu-ids is empty") }
            if ids.contains(where: { $0 < 0 }) { return RequestError("GPU indices must be 0 or more") }
            if Set(ids).count != ids.count { return RequestError("a GPU is listed twice in --gpu-ids") }
            let having = pool.filter { node in ids.allSatisfy(node.gpus.contains) }
            if having.count < request.nodes {
                let what = "GPUs " + ids.map(String.init).joined(separator: ",")
                return request.nodes == 1 ? RequestError("no node has \(what)")
                    : RequestError("the job asks for \(request.nodes) nodes with \(what), but only \(having.count) node(s) have them")
            }
            return nil
        }
        let need = request.gpusPerNode
        guard need > 0 else { return nil }
        if request.selectsGPUs {
            let having = pool.filter { $0.gpus(for: request).count >= need }
            if having.count < request.nodes {
                var flags: [String] = []
                if let type = request.gpuType { flags.append("--gpu-type \(type)") }
                if let mb = request.gpuMemoryMB { flags.append("--gpu-mem \(GPUModel.memoryText(mb))") }
                let what = request.nodes == 1 ? "no node has \(need) such GPU\(need == 1 ? "" : "s")"
                    : "the job asks for \(request.nodes) nodes with \(need) such GPUs each, but only \(having.count) node(s) have that many"
                return RequestError("\(flags.joined(separator: " ")): \(what) (GPUs here: \(inventory(pool)))")
            }
            return nil
        }
        let big = pool.reduce(0) { $0 + ($1.gpus.count >= need ? 1 : 0) }
        if big < request.nodes {
            let largest = pool.map(\.gpus.count).max() ?? 0
            let total = pool.reduce(0) { $0 + $1.gpus.count }
            if request.nodes == 1 {
                return RequestError("no node has \(need) GPUs (the largest has \(largest), the cluster \(total) in all)")
            }
            return RequestError("the job asks for \(request.nodes) nodes with \(need) GPUs each, but only \(big) node(s) have that many")
        }
        return nil
    }

    /// "16 × NVIDIA A100-SXM4-80GB 80 GiB, 2 × NVIDIA GeForce RTX 4090 24 GiB", most numerous first.
    static func inventory(_ nodes: [NodeCapacity]) -> String {
        var count: [GPUModel: Int] = [:]
        var unknown = 0
        for node in nodes {
            for g in node.gpus {
                if let model = node.models[g] { count[model, default: 0] += 1 } else { unknown += 1 }
            }
        }
        var parts = count.sorted { ($0.value, $1.key.name, $1.key.memoryMB) > ($1.value, $0.key.name, $0.key.memoryMB) }
            .map { "\($0.value) × \($0.key.name) \(GPUModel.memoryText($0.key.memoryMB))" }
        if unknown > 0 { parts.append("\(unknown) of unknown model") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    static func knownList(_ nodes: [NodeCapacity]) -> String {
        nodes.isEmpty ? "none registered yet" : nodes.map(\.id).joined(separator: ", ")
    }
}
