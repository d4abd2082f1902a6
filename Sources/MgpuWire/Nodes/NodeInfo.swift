public import MgpuCore

public enum NodeState: String, Codable, Sendable {
    case up = "UP"
    case down = "DOWN"
}

/// A node as the API lists it.
public struct NodeInfo: Codable, Sendable {
    public var id: String
    public var address: String
    public var state: NodeState
    public var gpus: [GPU]
    public var busyGPUs: [Int]
    public var cpuSlots: Int
    public var cpuSlotsUsed: Int
    public var lastSeen: Double
    public var secondsSinceHeartbeat: Double
    public var simulated: Bool
    /// The latest readings; absent while the node is DOWN (stale numbers are not shown as live).
    public var telemetry: NodeTelemetry?
    /// GPUs a process outside mgpu holds.
    public var outsideGPUs: [Int]
    /// GPUs reported unhealthy (why: `telemetry.gpus[].unhealthy`); they get no new jobs. Absent from mgpu 0.1.
    public var unhealthyGPUs: [Int]?
    /// The node's agent deregistered.
    public var left: Bool?
    /// Drained by an admin (or by itself: `by` is "health check"): why, by whom, since when; `drainState` is DRAINING while jobs still run there, then DRAINED.
    public var drain: NodeDrain?
    public var drainState: String?

    public init(id: String, address: String, state: NodeState, gpus: [GPU], busyGPUs: [Int], cpuSlots: Int,
                cpuSlotsUsed: Int, lastSeen: Double, secondsSinceHeartbeat: Double) {
        self.id = id
        self.address = address
        self.state = state
        self.gpus = gpus
        self.busyGPUs = busyGPUs
        self.cpuSlots = cpuSlots
        self.cpuSlotsUsed = cpuSlotsUsed
        self.lastSeen = lastSeen
        self.secondsSinceHeartbeat = secondsSinceHeartbeat
        self.simulated = gpus.contains { $0.simulated }
        self.outsideGPUs = []
    }

    /// GPUs held by mgpu jobs.
    public var allocatedGPUs: [Int] { busyGPUs.filter { !outsideGPUs.contains($0) && !(unhealthyGPUs ?? []).contains($0) } }
    public var freeGPUCount: Int { state == .up ? gpus.count - busyGPUs.count : 0 }
}

/// `POST /v1/admin/nodes/{id}/drain`.
public struct DrainRequest: Codable, Sendable {
    public var reason: String?
    public init(reason: String?) { self.reason = reason }
}
