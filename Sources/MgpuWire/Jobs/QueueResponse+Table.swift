public import MgpuCore

/// What a line of `mgpu queue` shows of a job: held alike by the JSON's `JobInfo` and by the master's `Job`, so the
/// master renders its text listing straight from its jobs (no JobInfo made per line) with the same cells.
public protocol QueueListable {
    var id: JobID { get }
    var name: String { get }
    var user: String { get }
    var state: JobState { get }
    var request: ResourceRequest { get }
    var submitTime: Double { get }
    var startTime: Double? { get }
    var endTime: Double? { get }
    var parts: [JobPart] { get }
    var exit: ExitStatus? { get }
    var reason: String? { get }
    var timeLimit: Double? { get }
    var requeues: Int? { get }
    var array: JobArray? { get }
}

extension JobInfo: QueueListable {}
extension Job: QueueListable {}

/// `mgpu queue`'s listing before it is laid out: a line of cells per job (`QueueResponse.cells`), the nodes, and
/// how many jobs that ended within the listing's window it leaves out (only the most recently ended are listed).
public struct QueueListing: Sendable {
    /// How many ended jobs `mgpu queue` lists at most (the most recently ended): a sweep of 1,000 jobs that just
    /// finished would otherwise bury what waits and runs. `mgpu history` has them all.
    public static let endedShown = 20

    public var lines: [[String]]
    public var nodes: [NodeInfo]
    /// A running job's node is silent (its state shows as RUNNING*, explained under the tables).
    public var anySilent: Bool
    public var endedNotShown: Int
    /// The window, in seconds, of the ended jobs listed.
    public var finishedWithin: Double

    public init(lines: [[String]], nodes: [NodeInfo], anySilent: Bool, endedNotShown: Int = 0, finishedWithin: Double = 300) {
        self.lines = lines
        self.nodes = nodes
        self.anySilent = anySilent
        self.endedNotShown = endedNotShown
        self.finishedWithin = finishedWithin
    }

    /// The listing `mgpu queue` prints: jobs, then nodes.
    public func render() -> String { String(decoding: renderBytes(), as: UTF8.self) }

    /// `render()`'s text as UTF-8, as the master sends it.
    public func renderBytes() -> [UInt8] {
        let jobs = Table(header: ["JOBID", "NAME", "USER", "STATE", "GPUS", "ELAPSED", "TIME LEFT", "REASON"], rows: lines)
        var nodeTable = Table(header: ["NODE", "ADDRESS", "STATE", "GPUS", "FREE", "BUSY", "CPU-SLOTS", "HEARTBEAT"])
        for node in nodes {
            let sim = node.simulated ? " (simulated)" : ""
            nodeTable.rows.append([node.id, node.address, node.state.rawValue + (node.drainState.map { ", " + $0 } ?? ""), "\(node.gpus.count)\(sim)",
                               node.state == .up ? "\(node.freeGPUCount)" : "-", "\(node.busyGPUs.count)",
                               "\(node.cpuSlotsUsed)/\(node.cpuSlots)", "\(Int(node.secondsSinceHeartbeat))s ago"])
        }
        var out: [UInt8] = []
        if lines.isEmpty { out += "No jobs.".utf8 } else { jobs.render(into: &out) }
        if endedNotShown > 0 {
            let window = finishedWithin >= 60 ? "\(Int(finishedWithin / 60)) min" : "\(Int(finishedWithin)) s"
            out += "\n… and \(endedNotShown) more job\(endedNotShown == 1 ? "" : "s") ended in the last \(window): `mgpu history` lists them".utf8
        }
        out += "\n\n".utf8
        if nodes.isEmpty { out += "No nodes registered.".utf8 } else { nodeTable.render(into: &out) }
        if anySilent {
            out += "\n\nRUNNING*: running, node not responding (the job keeps its GPUs until the node is back or lost)".utf8
        }
        return out
    }
}

extension QueueResponse {
    /// The listing `mgpu queue` prints, of every job of this answer.
    public func renderTable() -> String {
        QueueListing(lines: jobs.map { Self.cells($0, note: $0.note, now: now) }, nodes: nodes,
                     anySilent: jobs.contains { Self.isSilent($0.note) }).render()
    }

    /// A running job's note when a node of it has gone silent (its state shows as RUNNING*).
    public static func isSilent(_ note: String?) -> Bool { note?.hasPrefix("node not responding") == true }

    /// One job's line: its cells, under the listing's header.
    public static func cells(_ job: some QueueListable, note: String?, now: Double) -> [String] {
        let elapsed: String
        switch job.state {
        case .pending: elapsed = formatElapsed(now - job.submitTime)
        case .running: elapsed = formatElapsed(now - (job.startTime ?? now))
        default: elapsed = formatElapsed((job.endTime ?? now) - (job.startTime ?? job.endTime ?? now))
        }
        var gpus = job.parts.isEmpty
            ? (job.request.pinned != nil ? "pinned" : String(job.request.totalGPUs))
            : JobPart.placementText(job.parts)
        if job.request.distributed { gpus += " (distributed)" }
        var reason = note ?? job.reason ?? ""
        if job.state.isTerminal, let exit = job.exit, job.state != .nodeFail { reason = job.reason ?? exit.summary }
        if let n = job.requeues, n > 0 { reason += reason.isEmpty ? "requeued \(n)×" : " (requeued \(n)×)" }
        let state = job.state == .running && isSilent(note) ? "RUNNING*" : job.state.rawValue
        var left = "-"
        if let limit = job.timeLimit {
            switch job.state {
            case .pending: left = formatElapsed(limit)
            case .running: left = formatElapsed(max(0, limit - (now - (job.startTime ?? now))))
            default: break
            }
        }
        // An array's record: the tasks not started, on one line ("3F2A9C01_[10-99%8]").
        var id = job.array.map { job.id.rawValue + "_" + $0.pendingText } ?? job.id.rawValue
        // (Counted in characters only when the bytes could be too many: a count of characters walks the text.)
        if id.utf8.count > 48 && id.count > 48 { id = id.prefix(46) + "…]" }
        let name = job.name.utf8.count <= 24 ? job.name : String(job.name.prefix(24))
        return [id, name, job.user, state, gpus, elapsed, left, reason]
    }
}
