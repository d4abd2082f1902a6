import Foundation
import MgpuCore
import MgpuWire

/// One job of a trace: `job_id,user,submit_time,num_gpu,duration,time_limit` (seconds; a time limit of 0: none).
public struct TraceJob: Sendable, Equatable {
    public var id: String
    public var user: String
    public var submit: Double
    public var gpus: Int
    public var duration: Double
    public var timeLimit: Double?

    public init(id: String, user: String, submit: Double, gpus: Int, duration: Double, timeLimit: Double?) {
        self.id = id
        self.user = user
        self.submit = submit
        self.gpus = gpus
        self.duration = duration
        self.timeLimit = timeLimit
    }
}

public enum Trace {
    public static let header = "job_id,user,submit_time,num_gpu,duration,time_limit"

    /// The jobs of a CSV trace, or the first line that is wrong, as `name:LINE: what`.
    public static func parse(_ text: String, name: String = "trace") throws(RequestError) -> [TraceJob] {
        var jobs: [TraceJob] = []
        var columns: [String: Int] = [:]
        for (number, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if columns.isEmpty {
                for (i, field) in fields.enumerated() { columns[field] = i }
                let missing = header.split(separator: ",").map(String.init).filter { columns[$0] == nil }
                guard missing.isEmpty else {
                    throw RequestError("\(name):\(number + 1): the header must name \(header); missing \(missing.joined(separator: ", "))")
                }
                continue
            }
            func field(_ key: String) -> String { fields.indices.contains(columns[key]!) ? fields[columns[key]!] : "" }
            guard let submit = Double(field("submit_time")), let gpus = Int(field("num_gpu")), gpus >= 0,
                  let duration = Double(field("duration")), duration >= 0, let limit = Double(field("time_limit")), limit >= 0,
                  !field("user").isEmpty, submit.isFinite, duration.isFinite else {
                throw RequestError("\(name):\(number + 1): expected \(header) with numbers for the times and GPUs, got \(line.prefix(120).debugDescription)")
            }
            jobs.append(TraceJob(id: field("job_id"), user: field("user"), submit: submit, gpus: gpus, duration: duration,
                                 timeLimit: limit > 0 ? limit : nil))
        }
        guard !jobs.isEmpty else { throw RequestError("\(name): no jobs (expected a header line \(header), then one job per line)") }
        return jobs
    }
}

/// What a replay shows: the figures of `mgpu sim`.
public struct SimulationResult: Codable, Sendable {
    public var jobs: Int
    /// GPU-seconds used over GPU-seconds there were, from the first submission to the last end.
    public var utilization: Double
    public var wait_mean: Double
    public var wait_p50: Double
    public var wait_p95: Double
    public var wait_max: Double
    /// Job completion time (end minus submission).
    public var jct_mean: Double
    /// (wait + run) / max(run, 10 s), at least 1.
    public var slowdown_mean: Double
    /// The p95 wait of the jobs of the lighter half of the users (by GPU-hours).
    public var light_half_wait_p95: Double
    public var users: [String: UserResult]
    /// The trace's job ids in the order the jobs started.
    public var start_order: [String]
    /// Wall-clock seconds the replay took.
    public var replay_seconds: Double

    public struct UserResult: Codable, Sendable {
        public var jobs: Int
        public var gpu_hours: Double
        public var wait_mean: Double
        public var wait_p95: Double
    }
}

/// Replays a trace through the master the cluster runs (`Harness`: the real MasterState, its scheduler and policy,
/// simulated agents), in virtual time: every job is submitted at its time, runs for its duration on the GPUs the master
/// gives it, and ends. Jobs with more GPUs than a node has run on whole nodes.
public enum Simulation {
    public static func run(_ trace: [TraceJob], nodes: Int, gpusPerNode: Int, policy: SharingPolicy) async throws -> SimulationResult {
        let started = Date()
        let jobs = trace.sorted { $0.submit < $1.submit }
        let harness = try Harness(nodeTimeout: 1e12, nodeLostAfter: 1e12) { config in
            config.policy = policy
            config.keepEndedSeconds = 1e12
            config.backfillSlackOverride = 0  // a simulated part frees its GPUs the moment its time is up
            config.maxPendingPerUser = Int.max / 2
        }
        harness.clock.set(jobs.first?.submit ?? 0)
        let durations = jobs.map(\.duration)
        // A part "runs" for its job's duration: the command names the job's index in the trace.
        let plan: SimulatedAgent.Plan = { work in
            guard let index = Int(work.command.dropFirst(4)), durations.indices.contains(index) else { return nil }
            return (durations[index], ExitStatus(code: 0))
        }
        let width = String(nodes).count
        for n in 1...nodes {
            try await harness.addNode("n" + String(repeating: "0", count: width - String(n).count) + "\(n)", gpus: gpusPerNode, plan: plan)
        }
        var ids: [JobID] = []
        var next = 0
        while true {
            let nextSubmit = next < jobs.count ? jobs[next].submit : Double.infinity
            let nextEnd = harness.agents.values.flatMap { $0.running.values.compactMap(\.endsAt) }.min() ?? Double.infinity
            let time = min(nextSubmit, nextEnd)
            guard time.isFinite else { break }
            harness.clock.set(max(harness.now, time))
            while next < jobs.count && jobs[next].submit <= harness.now {
                let job = jobs[next]
                let request = job.gpus > gpusPerNode
                    ? ResourceRequest(gpusPerNode: gpusPerNode, nodes: (job.gpus + gpusPerNode - 1) / gpusPerNode)
                    : ResourceRequest(gpusPerNode: job.gpus)
                do {
                    ids.append(try await harness.submit("sim \(next)", user: job.user, request: request) { $0.timeLimit = job.timeLimit })
                } catch let error as RequestError {
                    throw RequestError("trace job \(job.id) cannot run on \(nodes) × \(gpusPerNode) GPUs: \(error.message)")
                }
                next += 1
            }
            // Reports until the starts and ends of this moment have settled (so the ranks of one job start together).
            for round in 0... {
                if round == 10_000 { throw RequestError("the simulation did not settle at t=\(harness.now)") }
                var changed = false
                for id in harness.agents.keys.sorted() {
                    let response = try await harness.sync(id)
                    if !response.start.isEmpty || !response.acknowledged.isEmpty { changed = true }
                }
                if !changed { break }
            }
        }
        return try summarize(harness.store.allJobs(), trace: jobs, ids: ids, gpusTotal: nodes * gpusPerNode,
                             seconds: Date().timeIntervalSince(started))
    }

    static func summarize(_ records: [Job], trace: [TraceJob], ids: [JobID], gpusTotal: Int, seconds: Double) throws -> SimulationResult {
        let byId = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        struct Done { var id: String; var seq: Int64; var user: String; var gpus: Int; var submit: Double; var start: Double; var end: Double }
        let done: [Done] = zip(ids, trace).compactMap { id, job in
            guard let record = byId[id], let start = record.startTime, let end = record.endTime else { return nil }
            return Done(id: job.id, seq: record.seq, user: job.user, gpus: job.gpus, submit: record.submitTime, start: start, end: end)
        }
        guard done.count == trace.count else { throw RequestError("the replay ended with \(trace.count - done.count) jobs unfinished") }
        func percentile(_ values: [Double], _ q: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * q).rounded(.up)) - 1))]
        }
        func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
        let waits = done.map { $0.start - $0.submit }
        let first = done.map(\.submit).min() ?? 0, last = done.map(\.end).max() ?? 0
        let used = done.reduce(0.0) { $0 + Double($1.gpus) * ($1.end - $1.start) }
        var users: [String: SimulationResult.UserResult] = [:]
        for (user, mine) in Dictionary(grouping: done, by: \.user) {
            let w = mine.map { $0.start - $0.submit }
            users[user] = .init(jobs: mine.count, gpu_hours: mine.reduce(0.0) { $0 + Double($1.gpus) * ($1.end - $1.start) } / 3600,
                                wait_mean: mean(w), wait_p95: percentile(w, 0.95))
        }
        let lighter = Set(users.sorted { ($0.value.gpu_hours, $0.key) < ($1.value.gpu_hours, $1.key) }.prefix(users.count / 2).map(\.key))
        return SimulationResult(
            jobs: done.count,
            utilization: last > first ? used / (Double(gpusTotal) * (last - first)) : 0,
            wait_mean: mean(waits), wait_p50: percentile(waits, 0.5), wait_p95: percentile(waits, 0.95), wait_max: waits.max() ?? 0,
            jct_mean: mean(done.map { $0.end - $0.submit }),
            slowdown_mean: mean(done.map { max(1, ($0.end - $0.submit) / max($0.end - $0.start, 10)) }),
            light_half_wait_p95: percentile(done.filter { lighter.contains($0.user) }.map { $0.start - $0.submit }, 0.95),
            users: users, start_order: done.sorted { ($0.start, $0.seq) < ($1.start, $1.seq) }.map(\.id), replay_seconds: seconds)
    }
}
