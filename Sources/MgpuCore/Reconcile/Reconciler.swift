/// The agent–master protocol's rules, as pure functions: what a node's report, a lost node, or a node asking for work
/// changes. No I/O and no clock (the time is passed in); the master validates, calls these, commits what they return,
/// applies it and wakes whoever waits. Each rule has one home here (or in `Job`: `partEnded`, `partsLost`, `outcome`,
/// `requeueAfterNodeFailure`, `workItem`).
public enum Reconciler {
    /// What happened, for the master's log (one line each, with job and node ids).
    public enum Event: Sendable, Equatable {
        case partEnded(job: JobID, node: String, rank: Int, exit: ExitStatus)
        case requeued(job: JobID, lostNodes: [String], requeues: Int, reason: String)
        /// Stopped for `by` (it was `--preemptible`), and back in the queue.
        case preempted(job: JobID, by: JobID, requeues: Int)
        case ended(job: JobID, state: JobState, exit: ExitStatus?)
        case delivered(job: JobID, node: String, rank: Int)
    }

    /// The outcome of a node's report.
    public struct SyncResult: Sendable {
        /// Jobs that changed, already finalized (a job whose parts have all ended has its final state, or is PENDING
        /// again after `--requeue`).
        public var changed: [Job] = []
        /// Finished parts the agent may forget once `changed` is committed.
        public var acknowledged: [PartAck] = []
        /// Parts the node runs that the master has ended (or never gave it): to stop.
        public var cancel: [CancelItem] = []
        /// GPUs and CPU slots those parts hold: not handed out until the node reports them gone.
        public var orphanGPUs: [Int] = []
        public var orphanCPUSlots = 0
        public var events: [Event] = []
    }

    /// A node's report: parts that ended, parts it runs (ours, or orphans), and parts handed to an earlier run of its
    /// agent that this run does not have (lost with it).
    /// - Parameters:
    ///   - job: the master's job by id (memory or store).
    ///   - active: the master's RUNNING jobs with a part on this node.
    ///   - recentlyAcknowledged: ended parts this node was told it may forget; a report built before that
    ///     acknowledgement may still list one as running, which is no orphan.
    public static func sync(node: String, incarnation: String, running: [PartRef], finished: [FinishedPart],
                            job: (JobID) -> Job?, active: [Job], recentlyAcknowledged: Set<PartAck>, now: Double) -> SyncResult {
        var result = SyncResult()
        var changed: [JobID: Job] = [:]
        func current(_ id: JobID) -> Job? { changed[id] ?? job(id) }

        for report in finished {
            result.acknowledged.append(report.ack)
            // A report of an earlier attempt of a requeued job only gets acknowledged.
            guard var j = current(report.jobId), j.state == .running, (report.attempt ?? 0) == (j.requeues ?? 0),
                  let i = j.parts.firstIndex(where: { $0.rank == report.rank && $0.nodeId == node }), j.parts[i].exit == nil
            else { continue }
            j.partEnded(i, report.exit)
            result.events.append(.partEnded(job: j.id, node: node, rank: report.rank, exit: report.exit))
            changed[j.id] = j
        }

        for part in running where !recentlyAcknowledged.contains(PartAck(jobId: part.jobId, attempt: part.attempt)) {
            if var j = current(part.jobId), j.state == .running, (part.attempt ?? 0) == (j.requeues ?? 0),
               let i = j.parts.firstIndex(where: { $0.rank == part.rank && $0.nodeId == node }), j.parts[i].exit == nil {
                if j.parts[i].deliveredTo != incarnation {
                    j.parts[i].deliveredTo = incarnation
                    changed[j.id] = j
                }
            } else {
                let known = current(part.jobId)
                result.cancel.append(CancelItem(jobId: part.jobId, graceSeconds: known?.killGraceSeconds ?? 10,
                                                reason: "job \(part.jobId) is \(known?.state.rawValue ?? "unknown") at the master"))
                result.orphanGPUs.append(contentsOf: part.gpus)
                if part.gpus.isEmpty { result.orphanCPUSlots += 1 }
            }
        }
        result.orphanGPUs.sort()

        let reported = Set(running.map(\.jobId)).union(finished.map(\.jobId))
        for original in active {
            guard var j = changed[original.id] ?? Optional(original), j.state == .running else { continue }
            var touched = false
            for i in j.parts.indices where j.parts[i].nodeId == node && j.parts[i].exit == nil {
                if let delivered = j.parts[i].deliveredTo, delivered != incarnation, !reported.contains(j.id) {
                    j.partEnded(i, ExitStatus(error: "the agent on \(node) restarted without the job", nodeFailed: true))
                    touched = true
                }
            }
            if touched { changed[j.id] = j }
        }

        let (final, events) = finalize(Array(changed.values), now: now)
        result.changed = final
        result.events += events
        return result
    }

    /// Nodes silent past `--node-lost-after`, or removed by an admin: their parts end with the exit given for each.
    /// (One job with parts on several of them changes once, with all of them.)
    public static func nodesLost(_ lost: [(node: String, exit: ExitStatus)], active: [Job], now: Double) -> (changed: [Job], events: [Event]) {
        var changed: [Job] = []
        for original in active where original.state == .running {
            var j = original
            var touched = false
            for (node, exit) in lost where j.partsLost(on: node, exit) { touched = true }
            if touched { changed.append(j) }
        }
        return finalize(changed, now: now)
    }

    /// Ends the jobs whose parts have all ended: with their outcome, or back to PENDING after a node failure with
    /// `--requeue` (never again on the lost nodes).
    public static func finalize(_ jobs: [Job], now: Double) -> (changed: [Job], events: [Event]) {
        var events: [Event] = []
        let changed = jobs.map { original -> Job in
            var job = original
            guard job.state == .running, let outcome = job.outcome() else { return job }
            // Stopped to make room (`--preemptible`): back to the queue, however it exited (a job that checkpoints on
            // SIGTERM exits 0), unless it was cancelled or ran out of time.
            if job.preemptedBy != nil, !job.cancelRequested, outcome.state != .timeout {
                let lost = job.parts.filter { $0.exit?.nodeFailed == true }.map(\.nodeId)
                let by = job.preemptedBy!
                if (try? job.requeueAfterPreemption(excluding: lost, at: now)) != nil {
                    events.append(.preempted(job: job.id, by: by, requeues: job.requeues ?? 0))
                    return job
                }
            }
            if outcome.state == .nodeFail, job.requeue == true, !job.cancelRequested {
                let lost = job.parts.filter { $0.exit?.nodeFailed == true }.map(\.nodeId)
                let why = outcome.reason ?? "node failure"
                if (try? job.requeueAfterNodeFailure(excluding: lost, reason: why, at: now)) != nil {
                    events.append(.requeued(job: job.id, lostNodes: lost, requeues: job.requeues ?? 0, reason: why))
                    return job
                }
            }
            job.exit = outcome.exit
            job.reason = outcome.reason
            try? job.transition(to: outcome.state, at: now)
            events.append(.ended(job: job.id, state: job.state, exit: job.exit))
            return job
        }
        return (changed, events)
    }

    /// Work for a node: parts to start, parts to stop.
    public struct Work: Sendable {
        public var start: [WorkItem] = []
        public var cancel: [CancelItem] = []
        /// Jobs whose parts were handed out now, or were cancelled before their node ever had them (those end here).
        public var changed: [Job] = []
        public var events: [Event] = []
    }

    /// What a node's agent (run `incarnation`) is to start and stop. `reported`: the jobs its report listed (running or
    /// finished): they are not handed out again. A part is handed to one run of the agent; a run that asks again gets
    /// it again (its answer may have been lost); another run does not (that part was lost with the earlier run).
    public static func work(for node: String, incarnation: String, reported: Set<JobID>, active: [Job],
                            nodes: [String: Node], now: Double) -> Work {
        var work = Work()
        var touched: [Job] = []
        for original in active.sorted(by: { $0.id < $1.id }) where original.state == .running {
            var job = original
            var changed = false
            for i in job.parts.indices where job.parts[i].nodeId == node && job.parts[i].exit == nil {
                if job.cancelRequested || job.terminating || job.preemptedBy != nil {
                    if reported.contains(job.id) || job.parts[i].deliveredTo != nil {
                        let why = job.cancelRequested ? "cancelled" : job.preemptedBy.map { "preempted by job \($0)" }
                            ?? job.reason ?? "another part failed"
                        // A job being preempted holds GPUs another job waits for: its grace is short.
                        let grace = job.preemptedBy != nil && !job.cancelRequested
                            ? min(job.killGraceSeconds, Job.preemptionGrace) : job.killGraceSeconds
                        work.cancel.append(CancelItem(jobId: job.id, graceSeconds: grace, reason: why))
                    } else {
                        // Cancelled before the node ever had it: nothing runs, so it ends here.
                        job.parts[i].exit = ExitStatus(signal: 15, error: "stopped before it started")
                        changed = true
                    }
                    continue
                }
                guard !reported.contains(job.id) else { continue }
                let part = job.parts[i]
                guard part.deliveredTo == nil || part.deliveredTo == incarnation else { continue }
                work.start.append(job.workItem(rank: part.rank, nodes: nodes))
                if part.deliveredTo == nil {
                    job.parts[i].deliveredTo = incarnation
                    work.events.append(.delivered(job: job.id, node: node, rank: part.rank))
                    changed = true
                }
            }
            if changed { touched.append(job) }
        }
        let (final, events) = finalize(touched, now: now)
        work.changed = final
        work.events += events
        return work
    }
}
