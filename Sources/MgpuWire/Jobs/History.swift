public import MgpuCore
import Foundation

/// One ended job as `mgpu history` (sacct) shows it: its times, where it ran, and its accounting record.
public struct HistoryRecord: Codable, Sendable, Equatable {
    public var id: JobID
    public var name: String
    public var user: String
    public var account: String
    public var state: JobState
    /// How it ended: "exit code 0", "killed by signal 9", ...
    public var exit: String?
    public var reason: String?
    public var submitTime: Double
    public var startTime: Double?
    public var endTime: Double
    /// Seconds it ran (its last run), and waited before its first start.
    public var elapsed: Double
    public var wait: Double?
    public var timeLimit: Double?
    /// Where it ran: "node001:gpu0,1".
    public var nodes: String
    /// GPUs held on each node it ran on (0 for a CPU-only part).
    public var nodeGPUs: [String: Int]
    public var gpus: Int
    public var gpuModels: [String]
    public var gpuHours: Double
    /// From its GPUs' telemetry while it ran; nil when no sample covered it.
    public var energyWh: Double?
    public var meanUtilization: Double?
    public var peakUtilization: Double?
    public var peakMemoryMB: Int?
    public var requeues: Int?

    public init(job: Job, account: String) {
        id = job.id
        name = job.name
        user = job.user
        self.account = account
        state = job.state
        exit = job.exit?.summary
        reason = job.reason
        submitTime = job.submitTime
        startTime = job.startTime
        endTime = job.endTime ?? job.submitTime
        elapsed = max(0, endTime - (job.startTime ?? endTime))
        let firstStart = job.history?.first?.start ?? job.startTime
        wait = firstStart.map { max(0, $0 - job.submitTime) }
        timeLimit = job.timeLimit
        nodes = job.placementText
        nodeGPUs = Dictionary(job.parts.map { ($0.nodeId, $0.gpus.count) }, uniquingKeysWith: +)
        gpus = job.parts.isEmpty ? job.request.totalGPUs : job.parts.reduce(0) { $0 + $1.gpus.count }
        let usage = job.usage ?? JobUsage()
        gpuModels = usage.gpuModels ?? []
        gpuHours = usage.gpuSeconds / 3600
        let sampled = usage.sampledGPUSeconds > 0 || usage.energyWh > 0
        energyWh = sampled ? usage.energyWh : nil
        meanUtilization = usage.meanUtilization
        peakUtilization = usage.peakUtilization
        peakMemoryMB = usage.peakMemoryMB
        requeues = job.requeues
    }
}

/// `GET /v1/history`: ended jobs, newest first.
public struct HistoryResponse: Codable, Sendable {
    public var records: [HistoryRecord]
    public init(records: [HistoryRecord]) { self.records = records }

    /// `mgpu history`'s table.
    public func renderTable(now: Double) -> String {
        var table = Table(header: ["JOBID", "NAME", "USER", "STATE", "EXIT", "ENDED", "ELAPSED", "WAIT", "GPUS", "GPU-H",
                                   "ENERGY", "UTIL", "NODES"])
        for r in records {
            table.rows.append([r.id.rawValue, String(r.name.prefix(24)), r.user, r.state.rawValue, Self.exitText(r),
                               formatClock(r.endTime, now: now), formatElapsed(r.elapsed), r.wait.map(formatElapsed) ?? "-",
                               "\(r.gpus)", String(format: "%.2f", r.gpuHours),
                               r.energyWh.map { String(format: "%.1f Wh", $0) } ?? "-",
                               r.meanUtilization.map { String(format: "%.0f %%", $0) } ?? "-", r.nodes])
        }
        return table.render()
    }

    static func exitText(_ r: HistoryRecord) -> String {
        guard let exit = r.exit else { return "-" }
        if exit.hasPrefix("exit code ") { return String(exit.dropFirst("exit code ".count)) }
        if exit.hasPrefix("killed by signal ") { return "sig " + exit.dropFirst("killed by signal ".count) }
        return "error"
    }


    /// The CSV columns: the first six are those `mgpu sim --trace` reads (a lab can replay its own history under
    /// another policy).
    public static let csvHeader = "job_id,user,submit_time,num_gpu,duration,time_limit,name,account,state,exit,start_time,end_time,wait,nodes,gpu_model,gpu_hours,energy_wh,mean_util,peak_util,peak_mem_mb,requeues"

    public func renderCSV() -> String {
        var lines = [Self.csvHeader]
        for r in records {
            let fields: [String] = [
                r.id.rawValue, r.user, Self.number(r.submitTime), "\(r.gpus)", Self.number(r.elapsed), Self.number(r.timeLimit ?? 0),
                r.name, r.account, r.state.rawValue, r.exit ?? "", r.startTime.map(Self.number) ?? "", Self.number(r.endTime),
                r.wait.map(Self.number) ?? "", r.nodes, r.gpuModels.joined(separator: ";"), String(format: "%.4f", r.gpuHours),
                r.energyWh.map { String(format: "%.3f", $0) } ?? "", r.meanUtilization.map { String(format: "%.1f", $0) } ?? "",
                r.peakUtilization.map { String(format: "%.1f", $0) } ?? "", r.peakMemoryMB.map(String.init) ?? "", "\(r.requeues ?? 0)",
            ]
            lines.append(fields.map(Self.csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.3f", value)
    }

    /// RFC 4180: quoted when it holds a comma, a quote or a line break; a leading =, +, - or @ gets a ' so that a
    /// spreadsheet does not run a job's name as a formula.
    static func csvField(_ text: String) -> String {
        var value = text
        if let first = value.first, "=+-@".contains(first), Double(value) == nil { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// `GET /v1/jobs/{id}/wait`: a job's (or an array's, all its tasks as one) state once it has ended, or when the wait
/// ran out.
public struct WaitResponse: Codable, Sendable, Equatable {
    public var id: JobID
    public var state: JobState
    /// How it ended (an array: its first task that did not complete, else its last).
    public var exit: ExitStatus?
    public var reason: String?
    public var elapsed: Double?
    public init(id: JobID, state: JobState, exit: ExitStatus? = nil, reason: String? = nil, elapsed: Double? = nil) {
        self.id = id
        self.state = state
        self.exit = exit
        self.reason = reason
        self.elapsed = elapsed
    }

    /// The status `mgpu wait` exits with for it: 0 when it completed, else its exit code (128+N for signal N), or 1.
    public var exitCode: Int32 {
        if state == .completed { return 0 }
        if let exit, exit.code != nil || exit.signal != nil, exit.shellCode != 0 { return exit.shellCode }
        return 1
    }
}
