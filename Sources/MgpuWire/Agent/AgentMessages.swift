public import MgpuCore

/// `POST /v1/agent/register`: an agent announces itself and its GPUs.
public struct RegisterRequest: Codable, Sendable, AgentProtocol.Versioned {
    /// The agent's protocol and release (`AgentProtocol`); absent from mgpu 0.1's agents.
    public var protocolVersion: Int? = AgentProtocol.current
    public var mgpuVersion: String? = AgentProtocol.release
    public var nodeId: String
    public var incarnation: String
    public var gpus: [GPU]
    public var cpuSlots: Int
    /// An address other nodes can reach this one at; the master uses the peer address when absent.
    public var advertiseAddress: String?

    public init(nodeId: String, incarnation: String, gpus: [GPU], cpuSlots: Int, advertiseAddress: String?) {
        self.nodeId = nodeId
        self.incarnation = incarnation
        self.gpus = gpus
        self.cpuSlots = cpuSlots
        self.advertiseAddress = advertiseAddress
    }
}

public struct RegisterResponse: Codable, Sendable {
    /// The master's protocol and release (absent from mgpu 0.1's master).
    public var protocolVersion: Int? = AgentProtocol.current
    public var mgpuVersion: String? = AgentProtocol.release
    /// How long a long-poll may wait, and how often to send heartbeats, in seconds.
    public var pollSeconds: Double
    public var heartbeatSeconds: Double
    public var address: String
    /// Given once, when a node enrols with the cluster secret: the credential it presents from then on.
    public var credential: String?
    public init(pollSeconds: Double, heartbeatSeconds: Double, address: String, credential: String? = nil) {
        self.credential = credential
        self.pollSeconds = pollSeconds
        self.heartbeatSeconds = heartbeatSeconds
        self.address = address
    }
}

/// `POST /v1/agent/sync`: the agent's whole state. It is both the heartbeat and, with `wait` > 0,
/// the long-poll for work: the master answers at once when it has something for the node, else after `wait` s.
public struct SyncRequest: Codable, Sendable, AgentProtocol.Versioned {
    public var protocolVersion: Int? = AgentProtocol.current
    public var mgpuVersion: String? = AgentProtocol.release
    public var nodeId: String
    public var incarnation: String
    public var running: [PartRef]
    /// Parts that ended and whose output has all been delivered; the master acknowledges them.
    public var finished: [FinishedPart]
    public var wait: Double
    /// A TCP port free on the node just now: the rendezvous port (MASTER_PORT) if a distributed job's rank 0 goes there.
    public var freePort: Int?
    /// The latest telemetry sample.
    public var telemetry: NodeTelemetry?

    public init(nodeId: String, incarnation: String, running: [PartRef], finished: [FinishedPart], wait: Double, freePort: Int? = nil) {
        self.nodeId = nodeId
        self.incarnation = incarnation
        self.running = running
        self.finished = finished
        self.wait = wait
        self.freePort = freePort
    }
}

public struct SyncResponse: Codable, Sendable {
    public var start: [WorkItem]
    public var cancel: [CancelItem]
    /// Finished parts the master has committed; the agent may forget them.
    public var acknowledged: [PartAck]
    /// The master does not know this node (e.g. its store was replaced): register again.
    public var reregister: Bool

    public init(start: [WorkItem] = [], cancel: [CancelItem] = [], acknowledged: [PartAck] = [], reregister: Bool = false) {
        self.start = start
        self.cancel = cancel
        self.acknowledged = acknowledged
        self.reregister = reregister
    }

    public var isEmpty: Bool { start.isEmpty && cancel.isEmpty && acknowledged.isEmpty && !reregister }
}

/// `POST /v1/agent/deregister`: the agent is leaving (its jobs were stopped and reported first).
public struct DeregisterRequest: Codable, Sendable {
    public var nodeId: String
    public var incarnation: String
    public var reason: String
    public init(nodeId: String, incarnation: String, reason: String) {
        self.nodeId = nodeId
        self.incarnation = incarnation
        self.reason = reason
    }
}

/// Answer to `POST /v1/agent/output`: how many bytes of that stream the master holds.
public struct OutputAck: Codable, Sendable {
    public var size: Int64
    public init(size: Int64) { self.size = size }
}

/// The error body every non-2xx answer carries: `{"error":{"message":"..."}}`.
public struct ErrorBody: Codable, Sendable {
    public struct Detail: Codable, Sendable { public var message: String }
    public var error: Detail
    public init(message: String) { self.error = Detail(message: message) }
}

public enum StreamName: String, Codable, Sendable, CaseIterable {
    case stdout
    case stderr
}

/// Header names of the output endpoints.
public enum OutputHeader {
    /// Bytes of the stream the master holds.
    public static let size = "mgpu-size"
    /// "1" when the job has ended and all its output has arrived.
    public static let complete = "mgpu-complete"
    /// Where the returned bytes start (with `tailLines`).
    public static let offset = "mgpu-offset"
    /// "1" when the client closed the job's stdin and every byte was returned.
    public static let eof = "mgpu-eof"
}
