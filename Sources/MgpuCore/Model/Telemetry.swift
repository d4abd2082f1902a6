/// A process using a GPU, as nvidia-smi reports it; `jobId` when it belongs to an mgpu job.
public struct GPUProcess: Codable, Sendable, Hashable {
    public var pid: Int
    public var user: String
    public var memoryMB: Int
    public var jobId: JobID?

    public init(pid: Int, user: String, memoryMB: Int, jobId: JobID? = nil) {
        self.pid = pid
        self.user = user
        self.memoryMB = memoryMB
        self.jobId = jobId
    }
}

/// One GPU's readings. A reading nvidia-smi could not give ("[N/A]", "[Not Supported]") is nil.
public struct GPUTelemetry: Codable, Sendable, Hashable {
    public var index: Int
    public var utilization: Double?
    public var memoryUsedMB: Int?
    public var memoryTotalMB: Int?
    public var temperatureC: Double?
    public var powerW: Double?
    public var processes: [GPUProcess]
    /// A process not started by mgpu holds memory on it.
    public var inUseOutside: Bool
    /// Why the GPU is unusable (nvidia-smi's health readings, XID errors), or nil: it gets no new jobs.
    public var unhealthy: String?

    public init(index: Int, utilization: Double? = nil, memoryUsedMB: Int? = nil, memoryTotalMB: Int? = nil,
                temperatureC: Double? = nil, powerW: Double? = nil, processes: [GPUProcess] = [], inUseOutside: Bool = false) {
        self.index = index
        self.utilization = utilization
        self.memoryUsedMB = memoryUsedMB
        self.memoryTotalMB = memoryTotalMB
        self.temperatureC = temperatureC
        self.powerW = powerW
        self.processes = processes
        self.inUseOutside = inUseOutside
    }
}

/// What a node's agent reports with its heartbeat.
///
/// Two JSON forms, both read everywhere: GPUs as objects under `gpus` (what the API and the dashboard show, and what
/// agents of protocol 1-2 send), and GPUs as arrays under `gpuRows` (what agents of protocol 3 send with each sync,
/// written when the encoder's `userInfo[NodeTelemetry.compactGPUs]` is true). A row is `[index, utilization,
/// memoryUsedMB, memoryTotalMB, temperatureC, powerW, inUseOutside, processes, unhealthy]`, a reading nvidia-smi could
/// not give is null, and the last two are left off when there are no processes and no health finding; a process is
/// `[pid, user, memoryMB, jobId]` (jobId left off when it is no mgpu job's). A 1,000-node cluster sends 200 samples a
/// second: the rows are a third of the objects' size and decode three times faster (no keys to hash and look up).
public struct NodeTelemetry: Codable, Sendable, Hashable {
    /// When the sample was taken (seconds since the epoch, the agent's clock).
    public var time: Double
    public var cpuPercent: Double?
    public var load: [Double]?
    public var memoryUsedMB: Int?
    public var memoryTotalMB: Int?
    public var gpus: [GPUTelemetry]
    /// `mgpu node --foreign-gpu-policy avoid`: GPUs in use outside mgpu get no new jobs.
    public var avoidForeign: Bool
    /// The first line a failing `mgpu node --health-check` program printed (nil: it passes, or there is none).
    public var healthCheck: String?

    public init(time: Double, cpuPercent: Double? = nil, load: [Double]? = nil, memoryUsedMB: Int? = nil,
                memoryTotalMB: Int? = nil, gpus: [GPUTelemetry] = [], avoidForeign: Bool = true) {
        self.time = time
        self.cpuPercent = cpuPercent
        self.load = load
        self.memoryUsedMB = memoryUsedMB
        self.memoryTotalMB = memoryTotalMB
        self.gpus = gpus
        self.avoidForeign = avoidForeign
    }

    /// GPUs the scheduler must leave alone: unhealthy ones, and those in use outside mgpu on a node that avoids them.
    public var unavailableGPUs: Set<Int> {
        Set(gpus.filter { $0.unhealthy != nil || (avoidForeign && $0.inUseOutside) }.map(\.index))
    }

    /// The most processes kept per GPU, and the longest user name kept (`sanitized`).
    public static let maxProcessesPerGPU = 256, maxUserLength = 64

    /// The sample with its free texts (health reasons, process users) made safe to show: one line of at most 200
    /// characters (64 for a user), no control characters (an agent is trusted with its jobs, not with a terminal's
    /// escape sequences), and at most 256 processes per GPU (a row of a process is a few bytes: one sync could
    /// otherwise make the master keep, and send to every listing, millions of them).
    public func sanitized() -> NodeTelemetry {
        func unsafe(_ scalar: Unicode.Scalar) -> Bool { scalar.isControlOrBidiOverride || scalar.isBidiMark }
        func clean(_ text: String?, limit: Int = 200) -> String? {
            text.map { String(String.UnicodeScalarView($0.unicodeScalars.prefix(limit).map { unsafe($0) ? " " : $0 })) }
        }
        var copy = self
        copy.healthCheck = clean(healthCheck)
        for i in copy.gpus.indices {
            copy.gpus[i].unhealthy = clean(copy.gpus[i].unhealthy)
            guard !copy.gpus[i].processes.isEmpty else { continue }
            if copy.gpus[i].processes.count > Self.maxProcessesPerGPU {
                copy.gpus[i].processes.removeLast(copy.gpus[i].processes.count - Self.maxProcessesPerGPU)
            }
            for j in copy.gpus[i].processes.indices {
                let user = copy.gpus[i].processes[j].user
                if user.unicodeScalars.count > Self.maxUserLength || user.unicodeScalars.contains(where: unsafe) {
                    copy.gpus[i].processes[j].user = clean(user, limit: Self.maxUserLength)!
                }
            }
        }
        return copy
    }

    /// GPUs reported unhealthy.
    public var unhealthyGPUs: [Int] { gpus.filter { $0.unhealthy != nil }.map(\.index).sorted() }
}

extension NodeTelemetry {
    /// Set to true in an encoder's `userInfo` to write GPUs as rows (`gpuRows`): an agent's sync, protocol 3 on.
    public static let compactGPUs = CodingUserInfoKey(rawValue: "mgpu.telemetry.compactGPUs")!

    enum CodingKeys: String, CodingKey {
        case time, cpuPercent, load, memoryUsedMB, memoryTotalMB, gpus, gpuRows, avoidForeign, healthCheck
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        time = try c.decode(Double.self, forKey: .time)
        cpuPercent = try c.decodeIfPresent(Double.self, forKey: .cpuPercent)
        load = try c.decodeIfPresent([Double].self, forKey: .load)
        memoryUsedMB = try c.decodeIfPresent(Int.self, forKey: .memoryUsedMB)
        memoryTotalMB = try c.decodeIfPresent(Int.self, forKey: .memoryTotalMB)
        if c.contains(.gpuRows) {
            // One form or the other: with both, which one the master believed would be a guess.
            guard !c.contains(.gpus) else {
                throw DecodingError.dataCorruptedError(forKey: .gpus, in: c, debugDescription: "gpus and gpuRows together: send one")
            }
            gpus = try c.decode([GPURow].self, forKey: .gpuRows).map(\.gpu)
        } else {
            gpus = try c.decode([GPUTelemetry].self, forKey: .gpus)
        }
        avoidForeign = try c.decode(Bool.self, forKey: .avoidForeign)
        healthCheck = try c.decodeIfPresent(String.self, forKey: .healthCheck)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(time, forKey: .time)
        try c.encodeIfPresent(cpuPercent, forKey: .cpuPercent)
        try c.encodeIfPresent(load, forKey: .load)
        try c.encodeIfPresent(memoryUsedMB, forKey: .memoryUsedMB)
        try c.encodeIfPresent(memoryTotalMB, forKey: .memoryTotalMB)
        if encoder.userInfo[Self.compactGPUs] as? Bool == true {
            try c.encode(gpus.map(GPURow.init), forKey: .gpuRows)
        } else {
            try c.encode(gpus, forKey: .gpus)
        }
        try c.encode(avoidForeign, forKey: .avoidForeign)
        try c.encodeIfPresent(healthCheck, forKey: .healthCheck)
    }
}

/// One GPU's readings as a row (NodeTelemetry's `gpuRows`).
struct GPURow: Codable {
    var gpu: GPUTelemetry

    init(_ gpu: GPUTelemetry) { self.gpu = gpu }

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        gpu = GPUTelemetry(index: try c.decode(Int.self))
        gpu.utilization = try c.decodeIfPresent(Double.self)
        gpu.memoryUsedMB = try c.decodeIfPresent(Int.self)
        gpu.memoryTotalMB = try c.decodeIfPresent(Int.self)
        gpu.temperatureC = try c.decodeIfPresent(Double.self)
        gpu.powerW = try c.decodeIfPresent(Double.self)
        gpu.inUseOutside = try c.decode(Bool.self)
        if !c.isAtEnd { gpu.processes = try c.decode([ProcessRow].self).map(\.process) }
        gpu.unhealthy = try c.decodeIfPresent(String.self)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(gpu.index)
        try c.encode(gpu.utilization)
        try c.encode(gpu.memoryUsedMB)
        try c.encode(gpu.memoryTotalMB)
        try c.encode(gpu.temperatureC)
        try c.encode(gpu.powerW)
        try c.encode(gpu.inUseOutside)
        if !gpu.processes.isEmpty || gpu.unhealthy != nil { try c.encode(gpu.processes.map(ProcessRow.init)) }
        if let unhealthy = gpu.unhealthy { try c.encode(unhealthy) }
    }
}

/// A GPU process as a row: `[pid, user, memoryMB, jobId]`.
struct ProcessRow: Codable {
    var process: GPUProcess

    init(_ process: GPUProcess) { self.process = process }

    init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        process = GPUProcess(pid: try c.decode(Int.self), user: try c.decode(String.self), memoryMB: try c.decode(Int.self))
        process.jobId = try c.decodeIfPresent(JobID.self)
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(process.pid)
        try c.encode(process.user)
        try c.encode(process.memoryMB)
        if let jobId = process.jobId { try c.encode(jobId) }
    }
}

/// A fixed-size ring buffer: the newest `capacity` values, oldest first.
public struct RingBuffer<Element: Sendable>: Sendable {
    public let capacity: Int
    private var storage: [Element] = []
    private var head = 0

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        storage.reserveCapacity(capacity)
    }

    public mutating func append(_ value: Element) {
        if storage.count < capacity {
            storage.append(value)
        } else {
            storage[head] = value
            head = (head + 1) % capacity
        }
    }

    public var count: Int { storage.count }
    public var elements: [Element] { Array(storage[head...] + storage[..<head]) }
}
