import Foundation
import MgpuCore
import MgpuWire

extension MasterState {
    /// Only a job's owner or an admin may cancel it, read its output or write its stdin.
    public func checkOwner(_ id: JobID, _ user: Credentials.User?) throws {
        // A task that has not started: its array's record holds it.
        guard let job = lookup(id) ?? id.arrayParent.flatMap({ jobs[$0] }) else { return }
        guard let user, user.admin || user.name == job.user else {
            throw OwnershipError(message: "job \(id) belongs to \(job.user): only its owner or an admin can do that")
        }
    }

    /// Cancels jobs of `user`'s (any job, for an admin). Jobs that left memory have ended: the store, read outside the
    /// actor, says how.
    public nonisolated func cancel(_ ids: [String], by user: Credentials.User? = nil) async throws -> [CancelResponse.Result] {
        var results = try await cancelInMemory(ids, by: user)
        for i in results.indices where results[i].outcome == .unknown {
            guard let id = JobID(results[i].id), let job = try store.job(id) else { continue }
            let mine = user.map { $0.admin || $0.name == job.user } ?? true
            results[i] = .init(id: id.rawValue, outcome: mine ? .alreadyFinished : .denied, state: job.state)
        }
        return results
    }

    func cancelInMemory(_ ids: [String], by user: Credentials.User?) throws -> [CancelResponse.Result] {
        let now = clock()
        var results: [CancelResponse.Result] = []
        var changed: [Job] = []
        var records: [JobID: Job] = [:]
        for text in ids {
            guard let id = JobID(text) else {
                results.append(.init(id: text, outcome: .unknown, state: nil))
                continue
            }
            if let result = cancelArray(id, by: user, now: now, changed: &changed, records: &records)
                ?? cancelPendingTask(id, by: user, now: now, changed: &changed, records: &records) {
                results.append(result)
                continue
            }
            guard var job = jobs[id] else {
                results.append(.init(id: text, outcome: .unknown, state: nil))
                continue
            }
            if let user, !user.admin && user.name != job.user {
                results.append(.init(id: id.rawValue, outcome: .denied, state: job.state))
                continue
            }
            switch job.state {
            case .pending:
                job.cancelRequested = true
                job.reason = "cancelled while pending"
                try? job.transition(to: .cancelled, at: now)
                results.append(.init(id: id.rawValue, outcome: .cancelled, state: .cancelled))
                changed.append(job)
            case .running:
                if !job.cancelRequested {
                    job.cancelRequested = true
                    job.reason = "cancelled by user"
                    changed.append(job)
                }
                results.append(.init(id: id.rawValue, outcome: .cancelling, state: .running))
            default:
                results.append(.init(id: id.rawValue, outcome: .alreadyFinished, state: job.state))
            }
        }
        // Arrays' records, as the cancels left them.
        let (recordsChanged, recordsRemoved) = Self.settle(records)
        changed += recordsChanged
        try commit(jobs: changed, removingJobs: recordsRemoved)
        for job in changed { logger.info("job cancel requested", metadata: ["job": "\(job.id)", "state": "\(job.state.rawValue)"]) }
        if changed.contains(where: { $0.state == .cancelled }) { schedule() }
        return results
    }

    public func jobInfo(_ id: JobID) -> JobInfo? {
        computeExpectedStarts()
        // One job: its usage series too (listings leave it out).
        if let job = lookup(id) { return info(job, now: clock(), series: true) }
        // A task that has not started: its array's record holds it.
        guard let parent = id.arrayParent, let index = id.arrayIndex, let record = jobs[parent], record.state == .pending,
              record.array?.pending.contains(index) == true else { return nil }
        var task = info(record.task(index), now: clock())
        task.note = info(record, now: clock()).note
        return task
    }

    /// What a pending job waits for, or what is going on with a running one (a listing's REASON).
    func note(_ job: Job, now: Double) -> String? {
        switch job.state {
        case .pending: return waitingNote(job, now: now)
        case .running:
            let silent = job.parts.filter { part in
                part.exit == nil && !(nodes[part.nodeId]?.isResponding(now: now, timeout: config.nodeTimeout) ?? false)
            }
            if !silent.isEmpty { return "node not responding: " + silent.map(\.nodeId).joined(separator: ", ") }
            if job.cancelRequested { return "cancelling" }
            if let by = job.preemptedBy { return "being preempted for job \(by)" }
            if let idle = idleNote(job, now: now) { return idle }
            if job.terminating { return "terminating: \(job.reason ?? "a part failed")" }
            return nil
        default: return nil
        }
    }

    func info(_ job: Job, now: Double, series: Bool = false) -> JobInfo {
        listedJob(job, now: now, series: series).info(series: series)
    }

    /// The job and what this master works out about it now: its note, a running job's usage so far and idle mark, a
    /// pending job's priority and expected start. A running job's usage over time only with `series` (a listing's row
    /// leaves it out, and a kept row would hold it: up to 3 KB a running job).
    func listedJob(_ job: Job, now: Double, series: Bool = false) -> ListedJob {
        var live: ListedJob.Live?
        if job.state == .running {
            var usage = usageNow(job, now: now)
            if !series { usage?.series = nil }
            live = ListedJob.Live(usage: usage, idleSince: markedIdle.contains(job.id) ? idleSince[job.id] : nil)
        } else if job.state == .pending {
            let priority = lastPass.priorities.isEmpty ? nil : lastPass.priorities[job.id]
            let expectedStart: Double?
            if let reservation = lastPass.reservation, reservation.job == job.id || reservation.job.arrayParent == job.id {
                expectedStart = reservation.start
            } else {
                expectedStart = lastPass.expected?[job.id]
            }
            if priority != nil || expectedStart != nil { live = ListedJob.Live(priority: priority, expectedStart: expectedStart) }
        }
        return ListedJob(job: job, note: note(job, now: now), live: live)
    }

    /// Pending and running jobs, and those that ended in the last `finishedWithin` seconds.
    public func queue(finishedWithin: Double) -> QueueResponse {
        let listing = queueRows(finishedWithin: finishedWithin)
        return QueueResponse(now: listing.now, jobs: listing.jobs.map { $0.info() }, nodes: listing.nodes)
    }

    /// The same, each job as it is kept and what is worked out about it (QueueJSON makes JobInfos only of the rows
    /// that changed since its last listing).
    public func queueRows(finishedWithin: Double) -> (now: Double, jobs: [ListedJob], nodes: [NodeInfo]) {
        let now = clock()
        return (now, listed(finishedWithin: finishedWithin, now: now).shown.map { listedJob(jobs.values[$0], now: now) },
                nodeInfos(now: now))
    }

    /// The same listing as the lines of `mgpu queue` (`QueueListing.render` lays it out), with at most `endedShown`
    /// of the jobs that ended (the most recently ended): each line made from the job where it is kept, with no
    /// JobInfo or copy made of it (together a third of a 10,000-job listing).
    public func queueListing(finishedWithin: Double, endedShown: Int = .max) -> QueueListing {
        let now = clock()
        let (shown, endedNotShown) = listed(finishedWithin: finishedWithin, now: now, endedShown: endedShown)
        var anySilent = false
        // One copy of each job for both uses (a dictionary's value is copied out: a Job is large, and each copy was a
        // block move and a retain of its every field).
        let lines = shown.map { index in
            let job = jobs.values[index]
            let note = note(job, now: now)
            if QueueResponse.isSilent(note) { anySilent = true }
            return QueueResponse.cells(job, note: note, now: now)
        }
        return QueueListing(lines: lines, nodes: nodeInfos(now: now), anySilent: anySilent, endedNotShown: endedNotShown,
                            finishedWithin: finishedWithin)
    }

    /// Where the jobs a listing shows are kept, in submission order: every pending and running job, and the
    /// `endedShown` that ended last of those ended within `finishedWithin` (with how many more there were).
    func listed(finishedWithin: Double, now: Double, endedShown: Int = .max) -> (shown: [[JobID: Job].Index], endedNotShown: Int) {
        computeExpectedStarts()
        heap.churn += jobs.count / 4
        // Sorted as (seq, index) pairs, not as whole jobs: moving Job values around was most of a listing's sort; an
        // index reaches its job again without hashing its id.
        var shown: [(seq: Int64, index: [JobID: Job].Index)] = []
        let jobs = self.jobs
        shown.reserveCapacity(jobs.count)
        // The ended jobs to show: all of them when there is room for all, else the `keep` that ended last, kept as
        // they come (a burst's history is thousands of ended jobs, of which a listing shows 20: sorting them all by
        // their end was a sixth of a listing's time at the master).
        let keep = max(0, endedShown)
        var ended = LastEnded(keep: keep >= jobs.count ? nil : keep)
        for index in jobs.indices {
            let state = jobs.values[index].state, seq = jobs.values[index].seq
            if !state.isTerminal { shown.append((seq, index)) }
            else {
                let end = jobs.values[index].endTime ?? 0
                if now - end <= finishedWithin { ended.add(end: end, seq: seq, id: jobs.values[index].id, index: index) }
            }
        }
        shown += ended.kept.map { ($0.seq, $0.index) }
        // An array's tasks share its seq: among them, by id (task index), not the dictionary's order.
        let sorted = shown.sorted { a, b in a.seq != b.seq ? a.seq < b.seq : jobs.values[a.index].id < jobs.values[b.index].id }
        return (sorted.map(\.index), ended.seen - ended.kept.count)
    }

    /// The nodes as `GET /v1/nodes` lists them, now (without the jobs' rows a queue listing makes).
    public func nodeInfos() -> [NodeInfo] { nodeInfos(now: clock()) }

    public func nodeInfos(now: Double) -> [NodeInfo] {
        let caps = Dictionary(capacities(now: now).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return nodes.values.sorted { $0.id < $1.id }.map { node in
            let cap = caps[node.id]
            let up = node.isResponding(now: now, timeout: config.nodeTimeout)
            var info = NodeInfo(id: node.id, address: node.address, state: up ? .up : .down, gpus: node.gpus,
                                busyGPUs: (cap?.busyGPUs ?? []).sorted(), cpuSlots: node.cpuSlots,
                                cpuSlotsUsed: cap?.cpuSlotsUsed ?? 0, lastSeen: node.lastSeen,
                                secondsSinceHeartbeat: max(0, now - node.lastSeen))
            if up { info.telemetry = telemetry[node.id] }
            info.outsideGPUs = (telemetry[node.id]?.gpus.filter(\.inUseOutside).map(\.index) ?? []).sorted()
            info.unhealthyGPUs = telemetry[node.id]?.unhealthyGPUs ?? []
            info.left = node.left
            if let drain = node.drain {
                info.drain = drain
                info.drainState = (cap?.busyGPUs.isEmpty ?? true) && (cap?.cpuSlotsUsed ?? 0) == 0 ? "DRAINED" : "DRAINING"
            }
            return info
        }
    }
}

/// The ended jobs a listing shows: every one it is given (`keep` nil), or the `keep` that ended last (then by seq, then
/// by id: an array's tasks share its seq and often end in one report), in that order, latest first; and how many it
/// was given.
struct LastEnded {
    typealias Entry = (end: Double, seq: Int64, id: JobID, index: [JobID: Job].Index)
    let keep: Int?
    private(set) var kept: [Entry] = []
    private(set) var seen = 0

    init(keep: Int?) { self.keep = keep }

    mutating func add(end: Double, seq: Int64, id: JobID, index: [JobID: Job].Index) {
        seen += 1
        guard let keep else { kept.append((end, seq, id, index)); return }
        guard keep > 0 else { return }
        if kept.count == keep {
            guard (end, seq, id) > (kept[keep - 1].end, kept[keep - 1].seq, kept[keep - 1].id) else { return }
            kept.removeLast()
        }
        // The first kept entry that comes after it (a binary search: `kept` is in order, latest first).
        var low = 0, high = kept.count
        while low < high {
            let mid = (low + high) / 2
            if (kept[mid].end, kept[mid].seq, kept[mid].id) > (end, seq, id) { low = mid + 1 } else { high = mid }
        }
        kept.insert((end, seq, id, index), at: low)
    }
}
