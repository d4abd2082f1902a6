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

    /// The sample with its free texts (health reasons) made safe to show: one line of at most 200 characters, no
    /// control characters (an agent is trusted with its jobs, not with a terminal's escape sequences).
    public func sanitized() -> NodeTelemetry {
        func clean(_ text: String?) -> String? {
            text.map { String(String.UnicodeScalarView($0.unicodeScalars.prefix(200).map { $0.isControlOrBidiOverride || $0.isBidiMark ? " " : $0 })) }
        }
        var copy = self
        copy.healthCheck = clean(healthCheck)
        for i in copy.gpus.indices { copy.gpus[i].unhealthy = clean(copy.gpus[i].unhealthy) }
        return copy
    }

    /// GPUs reported unhealthy.
    public var unhealthyGPUs: [Int] { gpus.filter { $0.unhealthy != nil }.map(\.index).sorted() }
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
