import MgpuCore
import MgpuWire

/// Accounting: each job's GPU-seconds, energy and utilisation, from its runs and its nodes' telemetry.
extension MasterState {
    /// The longest gap between two samples of a node that still counts (a node that was silent longer is not
    /// assumed to have gone on as before).
    static let longestSampleGap = 60.0

    /// A node's new telemetry sample: the time since its previous one, for each running job's GPUs there (energy and
    /// utilisation), and whether they are idle (a job is idle since the latest of its GPU nodes became idle).
    func account(_ sample: NodeTelemetry, since previous: NodeTelemetry?, node: String) {
        let seconds = previous.map { sample.time - $0.time } ?? 0
        let integrate = seconds > 0 && seconds <= Self.longestSampleGap
        let byIndex = Dictionary(sample.gpus.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        for job in active(on: node) {
            let held = job.parts.filter { $0.nodeId == node && $0.exit == nil }.flatMap(\.gpus)
            guard !held.isEmpty else { continue }
            let readings = held.map { byIndex[$0] }
            if integrate { jobSamples[job.id, default: JobUsage()].add(readings.compactMap { $0 }, seconds: seconds) }
            jobSamples[job.id, default: JobUsage()].record(readings.compactMap { $0 }, at: clock())
            var nodes = idleByNode[job.id] ?? [:]
            nodes[node] = config.idle.since(nodes[node], utilizations: readings.map { $0?.utilization }, now: clock())
            idleByNode[job.id] = nodes
            let gpuNodes = Set(job.parts.filter { !$0.gpus.isEmpty && $0.exit == nil }.map(\.nodeId))
            let since = gpuNodes.compactMap { nodes[$0] }
            idleSince[job.id] = since.count == gpuNodes.count ? since.max() : nil
            if idleSince[job.id] == nil { markedIdle.remove(job.id) }
        }
    }

    /// Jobs about to be committed, with the accounting of each run that ends in them (to PENDING again or to the
    /// end): the GPU-seconds it held, the GPUs' models, and what telemetry said meanwhile.
    func withAccounting(_ changed: [Job]) -> [Job] {
        changed.map { job in
            guard job.state != .running, let old = jobs[job.id], old.state == .running, let start = old.startTime else { return job }
            var job = job
            var run = jobSamples[job.id] ?? JobUsage()
            let end = job.endTime ?? clock()
            let gpus = old.parts.reduce(0) { $0 + $1.gpus.count }
            run.gpuSeconds = Double(gpus) * max(0, end - start)
            let models = old.parts.flatMap { part in
                part.gpus.compactMap { index in nodes[part.nodeId]?.gpus.first { $0.index == index }?.name }
            }
            run.gpuModels = models.isEmpty ? nil : Array(Set(models)).sorted()
            job.usage = (job.usage ?? JobUsage()).merged(run)
            return job
        }
    }

    /// Once the runs that end in `changed` are committed: their GPU-seconds and energy join their users' totals.
    func countEndedRuns(_ changed: [Job]) {
        for job in changed {
            guard job.state != .running, let old = jobs[job.id], old.state == .running else { continue }
            var run = JobUsage()
            run.gpuSeconds = (job.usage?.gpuSeconds ?? 0) - (old.usage?.gpuSeconds ?? 0)
            run.energyWh = (job.usage?.energyWh ?? 0) - (old.usage?.energyWh ?? 0)
            endedTotals[job.user] = (endedTotals[job.user] ?? JobUsage()).merged(run)
        }
    }

    /// A running job's record so far (for listings): what its ended runs and this one's samples say.
    func usageNow(_ job: Job, now: Double) -> JobUsage? {
        guard job.state == .running, let start = job.startTime else { return job.usage }
        var run = jobSamples[job.id] ?? JobUsage()
        run.gpuSeconds = Double(job.parts.reduce(0) { $0 + $1.gpus.count }) * max(0, now - start)
        return (job.usage ?? JobUsage()).merged(run)
    }
}

extension MasterState {
    /// Ended jobs, newest first (`mgpu history`), each with its account in `policy`. Off the actor: a long history
    /// read holds up nothing else.
    public nonisolated func history(_ query: HistoryQuery, policy: SharingPolicy) throws -> HistoryResponse {
        let jobs = try store.history(query)
        return HistoryResponse(records: jobs.map { HistoryRecord(job: $0, account: policy.account(of: $0.user)) })
    }

    /// Ended jobs of `users` (nil: everyone's) between `since` and `until`, summed `by` user, account, node or GPU
    /// model. Off the actor.
    public nonisolated func report(since: Double, until: Double, by: ReportGrouping, users: [String]?,
                                   policy: SharingPolicy) throws -> ReportResponse {
        let history = try history(HistoryQuery(users: users, since: since, until: until, limit: 10_000_000), policy: policy)
        return ReportResponse(records: history.records, since: since, until: until, by: by)
    }

    /// The sharing policy now (accounts, for history and reports).
    public var policyNow: SharingPolicy { policy }
}

extension MasterState {
    /// Waits up to `seconds` for a job (or all of an array's tasks) to end; its state then (nil: no such job).
    public func waitForEnd(_ id: JobID, seconds: Double) async -> WaitResponse? {
        let deadline = clock() + max(0, seconds)
        while true {
            guard let state = jobState(id) else { return nil }
            if state.isTerminal || clock() >= deadline || waiters.isClosed { return endState(id, state: state) }
            // Any task of an array wakes its array's waiters too (MasterState.apply).
            await waiters.wait("job:\(id)", seconds: min(deadline - clock(), 30))
        }
    }

    func endState(_ id: JobID, state: JobState) -> WaitResponse {
        if let job = lookup(id), job.array == nil {
            return WaitResponse(id: id, state: state, exit: job.exit, reason: job.reason,
                                elapsed: job.startTime.map { (job.endTime ?? clock()) - $0 })
        }
        // An array: its first task that did not complete, else its last.
        let tasks = ((arrayTasks[id] ?? []).compactMap { jobs[$0] }).sorted { $0.id < $1.id }
        let all = tasks.isEmpty ? ((try? store.tasks(of: id)) ?? []).sorted { $0.id < $1.id } : tasks
        let telling = all.first { $0.state.isTerminal && $0.state != .completed } ?? all.last
        return WaitResponse(id: id, state: state, exit: telling?.exit, reason: telling.map { "task \($0.id): \($0.reason ?? $0.exit?.summary ?? $0.state.rawValue)" })
    }
}

extension MasterState {
    /// Jobs committed and applied just now that have ended: their `--notify` URL, or their user's default, gets an
    /// event. An array's tasks make one event, when the last of them ends (as Slurm's mail for an array).
    func notifyEnded(_ changed: [Job]) {
        guard let notifier else { return }
        for job in changed where job.state.isTerminal && !notified.contains(job.id) {
            guard let url = job.notify ?? policy.users[job.user]?.notify else { continue }
            let id = job.id.arrayParent ?? job.id
            if job.id.arrayParent != nil || job.array != nil {
                guard let state = jobState(id), state.isTerminal, notified.insert(id).inserted else { continue }
                var whole = job
                whole.id = id
                whole.state = state
                let end = endState(id, state: state)
                whole.exit = end.exit
                whole.reason = end.reason
                whole.usage = arrayUsage(id)
                notifier.send(JobEvent(event: "job.ended", job: whole, now: clock()), to: url)
            } else {
                notifier.send(JobEvent(event: "job.ended", job: job, now: clock()), to: url)
            }
        }
        if notified.count > 100_000 { notified.removeAll() }
    }

    /// An array's tasks' records together (those still in memory).
    func arrayUsage(_ id: JobID) -> JobUsage {
        (arrayTasks[id] ?? []).compactMap { jobs[$0]?.usage }.reduce(JobUsage()) { $0.merged($1) }
    }
}

extension MasterState {
    /// Idle GPUs, once a liveness tick: jobs idle long enough are marked (logged, their owner notified); with
    /// `--idle-action cancel`, those idle for `--idle-cancel-after` are cancelled, saying why.
    func checkIdle(now: Double) {
        let rule = config.idle
        var cancels: [Job] = []
        for (id, since) in idleSince.sorted(by: { $0.key < $1.key }) {
            // Not on a node that has gone silent: its last samples say nothing of now.
            guard let job = jobs[id], job.state == .running, !job.cancelRequested,
                  !job.parts.contains(where: { downNodes.contains($0.nodeId) }) else { continue }
            let verdict = rule.verdict(since: since, now: now, interactive: job.interactive == true)
            if verdict.idle && markedIdle.insert(id).inserted {
                logger.warning("job idle", metadata: ["job": "\(id)", "user": "\(job.user)", "node": "\(job.placementText)",
                                                      "since": "\(Int(now - since))s"])
                waiters.wake("dashboard")
                if let url = job.notify ?? policy.users[job.user]?.notify {
                    notifier?.send(JobEvent(event: "job.idle", job: job, now: now, idleThreshold: rule.threshold), to: url)
                }
            }
            if verdict.cancel {
                var cancelled = job
                cancelled.cancelRequested = true
                cancelled.reason = "cancelled: its GPUs stayed below \(formatPercent(rule.threshold)) for \(formatElapsed(now - since)) (--idle-action cancel)"
                cancels.append(cancelled)
            }
        }
        guard !cancels.isEmpty else { return }
        do {
            try commit(jobs: cancels)
            for job in cancels { logger.warning("job cancelled as idle", metadata: ["job": "\(job.id)", "user": "\(job.user)"]) }
        } catch {
            logger.error("could not cancel idle jobs: \(error)")
        }
    }


    /// "idle: GPUs below 1 % for 42m", for a running job marked idle.
    func idleNote(_ job: Job, now: Double) -> String? {
        guard markedIdle.contains(job.id), let since = idleSince[job.id] else { return nil }
        return "idle: GPUs below \(formatPercent(config.idle.threshold)) for \(formatElapsed(now - since))"
    }

    /// Per user: GPU-seconds and energy (Wh) since the master started, running jobs included (Prometheus counters).
    func userTotals(now: Double) -> [String: JobUsage] {
        var totals = endedTotals
        for id in running {
            guard let job = jobs[id], let usage = usageNow(job, now: now) else { continue }
            var run = JobUsage()
            run.gpuSeconds = usage.gpuSeconds - (job.usage?.gpuSeconds ?? 0)
            run.energyWh = usage.energyWh - (job.usage?.energyWh ?? 0)
            totals[job.user] = (totals[job.user] ?? JobUsage()).merged(run)
        }
        return totals
    }
}
