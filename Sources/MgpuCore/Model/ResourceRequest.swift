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
    /// `--gpu-type T`: only GPUs whose model name contains T (case-insensitive: "a100", "4090").
    public var gpuType: String?
    /// `--gpu-mem SIZE`: only GPUs with at least this much memory, in MiB (see `GPUModel.hasMemory`).
    public var gpuMemoryMB: Int?

    public init(gpusPerNode: Int = 1, nodes: Int = 1, nodelist: [String]? = nil, pinned: [PinnedGPUs]? = nil,
                gpuIds: [Int]? = nil, distributed: Bool = false, gpuType: String? = nil, gpuMemoryMB: Int? = nil) {
        self.gpusPerNode = gpuIds?.count ?? gpusPerNode
        self.nodes = nodes
        self.nodelist = nodelist
        self.pinned = pinned
        self.gpuIds = gpuIds
        self.distributed = distributed
        self.gpuType = gpuType
        self.gpuMemoryMB = gpuMemoryMB
    }

    enum CodingKeys: String, CodingKey { case gpusPerNode, nodes, nodelist, pinned, gpuIds, distributed, excludedNodes, gpuType, gpuMemoryMB }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(gpusPerNode: try c.decodeIfPresent(Int.self, forKey: .gpusPerNode) ?? 1,
                  nodes: try c.decodeIfPresent(Int.self, forKey: .nodes) ?? 1,
                  nodelist: try c.decodeIfPresent([String].self, forKey: .nodelist),
                  pinned: try c.decodeIfPresent([PinnedGPUs].self, forKey: .pinned),
                  gpuIds: try c.decodeIfPresent([Int].self, forKey: .gpuIds),
                  distributed: try c.decodeIfPresent(Bool.self, forKey: .distributed) ?? false,
                  gpuType: try c.decodeIfPresent(String.self, forKey: .gpuType),
                  gpuMemoryMB: try c.decodeIfPresent(Int.self, forKey: .gpuMemoryMB))
        excludedNodes = try c.decodeIfPresent([String].self, forKey: .excludedNodes)
    }

    public var nodeCount: Int { pinned?.count ?? nodes }

    /// Needs no GPU: `--gpus 0`, or pinned to nodes without GPU indices.
    public var isCPUOnly: Bool {
        if let pinned { return pinned.allSatisfy { $0.gpus.isEmpty } }
        return gpusPerNode == 0
    }
    /// It asks for GPUs of a kind (`--gpu-type`, `--gpu-mem`).
    public var selectsGPUs: Bool { gpuType != nil || gpuMemoryMB != nil }

    /// Whether a GPU of this model will do (any GPU will, for a request that names no kind).
    public func admits(_ model: GPUModel?) -> Bool {
        guard selectsGPUs else { return true }
        guard let model else { return false }
        if let gpuType, !model.name.lowercased().contains(gpuType.lowercased()) { return false }
        if let gpuMemoryMB, !model.hasMemory(atLeast: gpuMemoryMB) { return false }
        return true
    }

    /// The kind it asks for, in words ("a100 GPUs with 40 GiB or more"), or nil.
    public var kindText: String? {
        guard selectsGPUs else { return nil }
        var text = gpuType.map { "\($0) GPUs" } ?? "GPUs"
        if let gpuMemoryMB { text += " with \(GPUModel.memoryText(gpuMemoryMB)) or more" }
        return text
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

/// A GPU's model, as the scheduler matches `--gpu-type` and `--gpu-mem` against it.
public struct GPUModel: Codable, Sendable, Hashable {
    public var name: String
    public var memoryMB: Int
    public init(name: String, memoryMB: Int) {
        self.name = name
        self.memoryMB = memoryMB
    }

    /// At least `mb` MiB, allowing 3 % for what the driver keeps: a "24 GB" card reports 24,564 MiB and a 40 GB
    /// A100 40,536 MiB, and `--gpu-mem 24G` or `40G` should take them.
    public func hasMemory(atLeast mb: Int) -> Bool { memoryMB * 100 >= mb * 97 }

    /// "80 GiB", "1.5 GiB", "512 MiB".
    public static func memoryText(_ mb: Int) -> String {
        if mb < 1024 { return "\(mb) MiB" }
        let tenths = (Double(mb) / 102.4).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? "\(Int(tenths / 10)) GiB" : "\(tenths / 10) GiB"
    }

    /// "40G", "24576M", "80GB", "1.5T", or plain MiB: MiB, or nil.
    public static func parseMemory(_ text: String) -> Int? {
        var number = text.filter { $0 != " " }.uppercased()
        if number.hasSuffix("IB") { number.removeLast(2) } else if number.hasSuffix("B") { number.removeLast() }
        var scale = 1.0
        switch number.last {
        case "K": scale = 1.0 / 1024
        case "M": scale = 1
        case "G": scale = 1024
        case "T": scale = 1024 * 1024
        default: break
        }
        if scale != 1 || number.last == "M" { number.removeLast() }
        guard let value = Double(number), value.isFinite, value > 0 else { return nil }
        let mb = (value * scale).rounded(.up)
        return mb >= 1 && mb <= 1e9 ? Int(mb) : nil
    }
}
