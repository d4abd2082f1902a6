import Foundation
import MgpuCore
import MgpuWire

extension MasterState {
    /// Jobs checked and given ids, not committed yet (`submit`).
    public struct PreparedSubmission: Sendable {
        let jobs: [Job]
        let user: String
    }

    /// Accepts a submission: all its jobs, in one transaction, or none (with the reason). The request is checked once
    /// against the limits and the cluster before it is expanded; the jobs are encoded and committed outside the actor,
    /// so a large submission does not hold up heartbeats, with the submissions that queued meanwhile (GroupCommit), while
    /// the task waits suspended; they are applied (queued) only once committed.
    public nonisolated func submit(_ request: SubmitRequest) async throws -> [JobID] {
        let count = try request.check(config.submitLimits)
        let prepared = try await prepare(request, count: count)
        do {
            try await store.groupCommit(StoreChange(jobs: prepared.jobs))
        } catch {
            await finish(prepared, committed: false)
            throw error
        }
        await finish(prepared, committed: true)
        return prepared.jobs.map(\.id)
    }

    /// `submit` for jobs given one by one.
    public nonisolated func submit(_ specs: [JobSpec]) async throws -> [JobID] {
        try await submit(SubmitRequest(jobs: specs))
    }

    /// Checks a submission and gives its jobs ids and places in submission order, reserved until `finish`.
    func prepare(_ request: SubmitRequest, count: Int) throws -> PreparedSubmission {
        let user = request.jobs[0].user
        let pendingNow = pendingByUser[user, default: 0]
        if pendingNow + count > config.maxPendingPerUser {
            throw RequestError("\(user) has \(pendingNow) pending jobs; the master holds at most \(config.maxPendingPerUser) per user (--max-pending-per-user): wait for some to start, or cancel some")
        }
        let specs: [JobSpec]
        do { specs = try request.expanded() } catch { throw RequestError(error.description) }
        let tasks = specs.reduce(0) { $0 + ($1.array?.tasks.count ?? 1) }
        if pendingNow + tasks > config.maxPendingPerUser {
            throw RequestError("\(user) has \(pendingNow) pending jobs; the master holds at most \(config.maxPendingPerUser) per user (--max-pending-per-user), and this would add \(tasks): wait for some to start, or cancel some")
        }
        if let refusal = policyRefusal(specs, user: user) { throw refusal }
        for id in Set(specs.flatMap { $0.dependencies?.flatMap(\.jobs) ?? [] }) where jobState(id) == nil {
            throw RequestError("--dependency names job \(id), which the master does not know")
        }
        // The cluster checks, once per distinct request (a template's jobs share one).
        let caps = nodeShapes()
        var refusals: [ResourceRequest: RequestError?] = [:]
        for (i, spec) in specs.enumerated() {
            let refusal = refusals[spec.request] ?? Admission.check(command: "-", request: spec.request, nodes: caps)
            refusals[spec.request] = refusal
            if let refusal { throw specs.count == 1 ? refusal : RequestError("job \(i + 1): \(refusal.message)") }
        }
        let now = clock()
        let ids = try newJobIDs(specs.count)
        let created = specs.enumerated().map { i, spec in
            var job = Self.job(spec, id: ids[i], seq: nextSeq + Int64(i), at: now)
            // Without --time, the master's default limit (--default-time): it holds, so backfill's plans hold.
            if job.timeLimit == nil { job.timeLimit = policy.defaultTime }
            return job
        }
        nextSeq += Int64(created.count)
        reservedIDs.formUnion(ids)
        pendingByUser[user, default: 0] += created.reduce(0) { $0 + Self.pendingWeight($1) }
        return PreparedSubmission(jobs: created, user: user)
    }

    /// Ends a prepared submission: its reservations go, and once committed its jobs are queued.
    func finish(_ prepared: PreparedSubmission, committed: Bool) {
        reservedIDs.subtract(prepared.jobs.map(\.id))
        pendingByUser[prepared.user, default: 0] -= prepared.jobs.reduce(0) { $0 + Self.pendingWeight($1) }
        guard committed, let first = prepared.jobs.first else { return }
        apply(prepared.jobs)
        if prepared.jobs.count == 1 {
            logger.info("job submitted", metadata: ["job": "\(first.id)", "user": "\(first.user)", "gpus": "\(first.request.totalGPUs)"])
        } else {
            // One submission, one line: every id is in it, so grepping a job id still finds it.
            logger.info("jobs submitted", metadata: ["count": "\(prepared.jobs.count)", "user": "\(first.user)",
                                                     "jobs": "\(prepared.jobs.map(\.id.rawValue).joined(separator: ","))"])
        }
        scheduleSoon()
    }

    /// `count` job ids, used by no job in memory, in a submission being committed, or in the store.
    func newJobIDs(_ count: Int) throws -> [JobID] {
        var ids: [JobID] = []
        ids.reserveCapacity(count)
        var taken = Set<JobID>()
        func fresh() -> JobID {
            var id = JobID.random(using: &rng)
            while jobs[id] != nil || reservedIDs.contains(id) || taken.contains(id) { id = JobID.random(using: &rng) }
            taken.insert(id)
            return id
        }
        for _ in 0..<count { ids.append(fresh()) }
        // Ended jobs leave memory after a while but stay in the store: never reuse one's id.
        for clash in try store.existingJobIDs(ids) {
            var id = fresh()
            while try store.existingJobIDs([id]).contains(id) { id = fresh() }
            ids[ids.firstIndex(of: clash)!] = id
        }
        return ids
    }

    /// A submitted job as the master keeps it.
    static func job(_ spec: JobSpec, id: JobID, seq: Int64, at now: Double) -> Job {
        let name = spec.name.flatMap { $0.isEmpty ? nil : $0 } ?? defaultName(spec.command)
        var job = Job(id: id, seq: seq, name: name, user: spec.user, command: spec.command, workdir: spec.workdir,
                      environment: spec.environment, request: spec.request, killGraceSeconds: spec.killGraceSeconds ?? 10,
                      submitTime: now)
        job.timeLimit = spec.timeLimit
        job.interactive = spec.interactive
        job.tty = spec.interactive == true ? spec.tty : nil
        job.requeue = spec.requeue == true ? true : nil
        job.nice = spec.nice.flatMap { $0 == 0 ? nil : $0 }
        job.dependencies = spec.dependencies
        job.preemptible = spec.preemptible == true ? true : nil
        job.notify = spec.notify
        job.outputFiles = spec.outputFiles.flatMap { $0.output == nil && $0.error == nil ? nil : $0 }
        job.array = spec.array.map { JobArray($0.tasks, maxRunning: $0.maxRunning) }
        return job
    }

    /// How many pending jobs a job counts as, for limits: an array job's record, one per task not started.
    static func pendingWeight(_ job: Job) -> Int {
        job.state == .pending ? (job.array?.pending.count ?? 1) : 0
    }

    static func defaultName(_ command: String) -> String {
        let first = command.split(whereSeparator: { $0 == " " || $0 == "\n" }).first.map(String.init) ?? "job"
        return String((first.split(separator: "/").last.map(String.init) ?? first).prefix(40))
    }
}
