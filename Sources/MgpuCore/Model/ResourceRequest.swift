/// What a job asks for. Either `gpusPerNode` GPUs on each of `nodes` nodes chosen by the scheduler
/// (optionally only among `nodelist`, and optionally exactly the GPU indices `gpuIds` on each), or exactly
/// the GPUs in `pinned`. `distributed` asks for the rendezvous environment (MASTER_ADDR, ...).
public struct ResourceRequest: Codable, Sendable, Hashable {
    public var gpusPerNode: Int
    public var nodes: Int
    public var nodelist: [String]?
    public var pinned: [PinnedGPUs]?
    public var gpuIds: [Int]?
    public var distributed: Bool
    /// Nodes not to use: those a `--requeue` job already failed on.
    public var excludedNodes: [String]?

    public init(gpusPerNode: Int = 1, nodes: Int = 1, nodelist: [String]? = nil, pinned: [PinnedGPUs]? = nil,
                gpuIds: [Int]? = nil, distributed: Bool = false) {
        self.gpusPerNode = gpuIds?.count ?? gpusPerNode
        self.nodes = nodes
        self.nodelist = nodelist
        self.pinned = pinned
        self.gpuIds = gpuIds
        self.distributed = distributed
    }

    enum CodingKeys: String, CodingKey { case gpusPerNode, nodes, nodelist, pinned, gpuIds, distributed, excludedNodes }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(gpusPerNode: try c.decodeIfPresent(Int.self, forKey: .gpusPerNode) ?? 1,
                  nodes: try c.decodeIfPresent(Int.self, forKey: .nodes) ?? 1,
                  nodelist: try c.decodeIfPresent([String].self, forKey: .nodelist),
                  pinned: try c.decodeIfPresent([PinnedGPUs].self, forKey: .pinned),
                  gpuIds: try c.decodeIfPresent([Int].self, forKey: .gpuIds),
                  distributed: try c.decodeIfPresent(Bool.self, forKey: .distributed) ?? false)
        excludedNodes = try c.decodeIfPresent([String].self, forKey: .excludedNodes)
    }

    public var nodeCount: Int { pinned?.count ?? nodes }

    /// Needs no GPU: `--gpus 0`, or pinned to nodes without GPU indices.
    public var isCPUOnly: Bool {
        if let pinned { return pinned.allSatisfy { $0.gpus.isEmpty } }
        return gpusPerNode == 0
    }
    public var totalGPUs: Int { pinned?.reduce(0) { $0 + $1.gpus.count } ?? gpusPerNode * nodes }
}

/// Exact GPUs on one node, as in `node001:0,1`.
public struct PinnedGPUs: Codable, Sendable, Hashable {
    public var nodeId: String
    public var gpus: [Int]
    public init(nodeId: String, gpus: [Int]) {
        self.nodeId = nodeId
        self.gpus = gpus
    }
}

extension PinnedGPUs {
    /// Parses `node001:0,1;node002:0`. Returns nil and a message on malformed text.
    public static func parseList(_ text: String) -> Result<[PinnedGPUs], RequestError> {
        var result: [PinnedGPUs] = []
        for item in text.split(separator: ";", omittingEmptySubsequences: true) {
            let pieces = item.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard pieces.count == 2, !pieces[0].isEmpty else {
                return .failure(RequestError("expected NODE:GPU[,GPU...] in --node-gpu-ids, got \"\(item)\""))
            }
            var gpus: [Int] = []
            for g in pieces[1].split(separator: ",", omittingEmptySubsequences: false) {
                guard let i = Int(g.trimmingSpaces), i >= 0 else {
                    return .failure(RequestError("GPU index \"\(g)\" in \"\(item)\" is not a non-negative number"))
                }
                gpus.append(i)
            }
            result.append(PinnedGPUs(nodeId: String(pieces[0]).trimmingSpaces, gpus: gpus))
        }
        if result.isEmpty { return .failure(RequestError("--node-gpu-ids is empty")) }
        return .success(result)
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

/// A request refused with a message the user can act on.
public struct RequestError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
