/// One GPU as its node reported it.
public struct GPU: Codable, Sendable, Hashable {
    /// The index mgpu schedules by and jobs see in CUDA_VISIBLE_DEVICES.
    public var index: Int
    public var uuid: String
    public var name: String
    public var memoryMB: Int
    public var simulated: Bool
    /// Inside a Slurm allocation: the physical index on the machine (SLURM_JOB_GPUS), when it differs.
    public var physicalIndex: Int?
    /// What the agent puts in CUDA_VISIBLE_DEVICES for this GPU, when not `index` (e.g. Slurm's own numbering).
    public var deviceId: String?

    public init(index: Int, uuid: String, name: String, memoryMB: Int, simulated: Bool = false,
                physicalIndex: Int? = nil, deviceId: String? = nil) {
        self.index = index
        self.uuid = uuid
        self.name = name
        self.memoryMB = memoryMB
        self.simulated = simulated
        self.physicalIndex = physicalIndex
        self.deviceId = deviceId
    }
}

/// Why, by whom and since when a node takes no new jobs.
public struct NodeDrain: Codable, Sendable, Hashable {
    public var reason: String
    public var by: String
    public var at: Double
    public init(reason: String, by: String, at: Double) {
        self.reason = reason
        self.by = by
        self.at = at
    }
}

/// A node as the master knows it. Whether it is UP or DOWN is derived from `lastSeen`.
public struct Node: Codable, Sendable, Identifiable {
    public var id: String
    /// The address the node's agent connected from (or advertised).
    public var address: String
    public var gpus: [GPU]
    public var cpuSlots: Int
    public var registeredAt: Double
    public var lastSeen: Double
    /// Changes each time the agent process starts; tells the master the agent restarted.
    public var incarnation: String
    /// GPUs still held by processes of jobs the master no longer runs there (e.g. after NODE_FAIL);
    /// they are not handed out until the agent reports them gone.
    public var orphanGPUs: [Int]
    /// CPU-only job slots held the same way.
    public var orphanCPUSlots: Int
    /// The agent deregistered (it was stopped, e.g. at the end of its Slurm allocation); cleared when it registers.
    public var left: Bool?
    /// `mgpu admin node drain`: it takes no new job (running ones finish) until resumed; kept across restarts.
    public var drain: NodeDrain?

    public init(id: String, address: String, gpus: [GPU], cpuSlots: Int, now: Double, incarnation: String) {
        self.id = id
        self.address = address
        self.gpus = gpus
        self.cpuSlots = cpuSlots
        self.registeredAt = now
        self.lastSeen = now
        self.incarnation = incarnation
        self.orphanGPUs = []
        self.orphanCPUSlots = 0
    }

    public func isResponding(now: Double, timeout: Double) -> Bool { now - lastSeen <= timeout && left != true }
    public var simulated: Bool { gpus.contains { $0.simulated } }
}
