import MgpuCore
import MgpuWire

/// An agent as a plain value: it registers, reports what it runs, takes the master's answer and "runs" each part for
/// the time its `plan` gives (in the harness's virtual time), ending with the exit the plan says, or at the part's time
/// limit, or when told to stop. It speaks exactly the messages the real agent sends, and keeps what a real agent's
/// supervisors keep across an agent restart.
public struct SimulatedAgent: Sendable {
    /// How a part runs: for how many seconds and how it ends; nil: until it is told to stop.
    public typealias Plan = @Sendable (WorkItem) -> (seconds: Double, exit: ExitStatus)?

    public struct Part: Sendable {
        public var work: WorkItem
        public var endsAt: Double?
        public var exit: ExitStatus
        public var stopping = false
    }

    public let nodeId: String
    public private(set) var incarnation: String
    public var gpus: [GPU]
    public var cpuSlots: Int
    public var plan: Plan
    /// Parts running on the node (supervisors outlive the agent: a restart keeps them).
    public private(set) var running: [JobID: Part] = [:]
    /// Parts that ended, reported until the master acknowledges them.
    public private(set) var finished: [FinishedPart] = []
    /// Every part it was told to start, in order (a work item sent twice starts once).
    public private(set) var started: [WorkItem] = []
    /// The telemetry each report carries (stamped with the report's time), if any: GPUs in use outside mgpu or
    /// unhealthy, as a real agent's sample says.
    public var telemetry: NodeTelemetry?
    /// The master asked it to register again.
    public private(set) var needsRegistration = true
    private var restarts = 0

    public init(nodeId: String, gpus: Int, cpuSlots: Int = 4, plan: @escaping Plan = { _ in nil }) {
        self.nodeId = nodeId
        self.incarnation = "\(nodeId)-0"
        self.gpus = (0..<gpus).map { GPU(index: $0, uuid: "SIM-\(nodeId)-\($0)", name: "Simulated GPU", memoryMB: 24576, simulated: true) }
        self.cpuSlots = cpuSlots
        self.plan = plan
    }

    public func registration() -> RegisterRequest {
        RegisterRequest(nodeId: nodeId, incarnation: incarnation, gpus: gpus, cpuSlots: cpuSlots, advertiseAddress: "\(nodeId).sim")
    }

    public mutating func registered() { needsRegistration = false }

    /// The agent process restarts (a new incarnation). With `keepingJobs` its parts' supervisors survive and it
    /// re-adopts them; without, they are gone (the machine rebooted).
    public mutating func restart(keepingJobs: Bool = true) {
        restarts += 1
        incarnation = "\(nodeId)-\(restarts)"
        needsRegistration = true
        if !keepingJobs {
            running = [:]
            finished = []
        }
    }

    /// Parts whose time is up end; then the report: what runs, what ended.
    public mutating func report(now: Double, wait: Double = 0) -> SyncRequest {
        for (id, part) in running.sorted(by: { $0.key < $1.key }) {  // a fixed order: runs repeat exactly
            guard let end = part.endsAt, end <= now else { continue }
            finished.append(FinishedPart(jobId: id, rank: part.work.rank, exit: part.exit, attempt: part.work.attempt))
            running[id] = nil
        }
        let parts = running.values.sorted { $0.work.jobId < $1.work.jobId }
            .map { PartRef(jobId: $0.work.jobId, rank: $0.work.rank, gpus: $0.work.gpus, attempt: $0.work.attempt) }
        var request = SyncRequest(nodeId: nodeId, incarnation: incarnation, running: parts, finished: finished, wait: wait)
        if var sample = telemetry {
            sample.time = now
            request.telemetry = sample
        }
        return request
    }

    /// Takes the master's answer: forget what it committed, stop what it stops, start what it starts.
    public mutating func apply(_ response: SyncResponse, now: Double) {
        if response.reregister {
            needsRegistration = true
            return
        }
        let acknowledged = Set(response.acknowledged)
        finished.removeAll { acknowledged.contains($0.ack) }
        for item in response.cancel {
            guard var part = running[item.jobId], !part.stopping else { continue }
            // SIGTERM: the part ends at once (killed by signal 15).
            part.stopping = true
            part.endsAt = now
            part.exit = ExitStatus(signal: 15)
            running[item.jobId] = part
        }
        for work in response.start {
            if let current = running[work.jobId], current.work.startKey == work.startKey { continue }
            if finished.contains(where: { $0.jobId == work.jobId && ($0.attempt ?? 0) == (work.attempt ?? 0) }) { continue }
            started.append(work)
            var part = Part(work: work, endsAt: nil, exit: ExitStatus(code: 0))
            if let (seconds, exit) = plan(work) {
                part.endsAt = now + seconds
                part.exit = exit
            }
            // The supervisor enforces the time limit: SIGTERM at the limit, and the part ends TIMEOUT.
            if let limit = work.timeLimit, part.endsAt.map({ $0 > now + limit }) ?? true {
                part.endsAt = now + limit
                part.exit = ExitStatus(signal: 15, timedOut: true)
            }
            running[work.jobId] = part
        }
    }

    /// The GPUs its running parts hold.
    public var busyGPUs: [Int] { running.values.flatMap(\.work.gpus).sorted() }
}
