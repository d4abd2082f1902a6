import MgpuCore
import MgpuWire

/// Array jobs (`--array`). One record holds the tasks that have not started; a pass sees it as its next tasks (`ID_N`),
/// as many as may start; each task that starts becomes a job of its own, and the record goes once none is left.
extension MasterState {
    /// The queue one pass works on: arrays' records expanded into their next tasks (Scheduler.expandArrays).
    func expandArrays(_ queue: [PendingJob], caps: [NodeCapacity]) -> [PendingJob] {
        guard hasArrays(queue) else { return queue }
        return Scheduler.expandArrays(queue, nodes: caps, array: { self.jobs[$0]?.array },
                                      taskLimit: { self.jobs[$0]?.arrayTask?.maxRunning }, running: { self.arrayRunning[$0] ?? 0 })
    }

    /// Whether the queue holds an array's record or a task (then a pass's queue is not the pending queue itself).
    func hasArrays(_ queue: [PendingJob]) -> Bool {
        queue.contains { jobs[$0.id]?.array != nil || $0.id.arrayParent != nil }
    }

    /// Starts the assigned task `id` of an array from its record (in `records`, the records being changed in this pass):
    /// the task as a new job, PENDING, and the record without it. Nil when the record no longer holds it.
    func splitTask(_ id: JobID, records: inout [JobID: Job]) -> Job? {
        guard let parent = id.arrayParent, let index = id.arrayIndex,
              var record = records[parent] ?? jobs[parent], record.state == .pending,
              record.array?.pending.contains(index) == true else { return nil }
        let task = record.task(index)
        record.array!.pending.remove(index)
        records[parent] = record
        return task
    }

    /// What a pass changes in array records: those with tasks left (or cancelled) are saved, the others go.
    static func settle(_ records: [JobID: Job]) -> (changed: [Job], removed: [JobID]) {
        var changed: [Job] = [], removed: [JobID] = []
        for (id, record) in records.sorted(by: { $0.key < $1.key }) {
            if record.array?.pending.isEmpty == true && record.state == .pending { removed.append(id) } else { changed.append(record) }
        }
        return (changed, removed)
    }

    /// A job's state, for dependencies and submit checks, arrays included: a task not started yet is PENDING (its
    /// array's record holds it); an array stands for all its tasks: PENDING while any waits, then RUNNING while any
    /// runs, then COMPLETED if all completed, else how the first one that did not ended. Nil: no such job.
    func jobState(_ id: JobID) -> JobState? {
        if let parent = id.arrayParent, let index = id.arrayIndex, jobs[id] == nil,
           let record = jobs[parent], record.state == .pending, record.array?.pending.contains(index) == true {
            return .pending
        }
        if let final = arrayOutcomes[id] { return final }
        let job = lookup(id)
        guard job?.array != nil || (job == nil && id.arrayParent == nil) else { return job?.state }
        var states: [JobState] = job.map { [$0.state] } ?? []
        var tasks = (arrayTasks[id] ?? []).compactMap { jobs[$0] }
        // Tasks that ended long ago have left memory: the store has them.
        let total = job?.array?.count ?? tasks.first?.arrayTask?.count ?? 0
        if tasks.count + (job?.array?.pending.count ?? 0) < total || (job == nil && tasks.isEmpty) {
            tasks = (try? store.tasks(of: id)) ?? tasks
        }
        states += tasks.map(\.state)
        guard !states.isEmpty else { return nil }
        if states.contains(.pending) { return .pending }
        if states.contains(.running) { return .running }
        let final = states.first { $0 != .completed } ?? .completed
        // Every task has ended (none can run again): the answer holds from now on.
        if job?.array == nil || job?.state.isTerminal == true { arrayOutcomes[id] = final }
        return final
    }

    /// Why an array's record waits, when its `%MAX` is the reason.
    func arrayLimitNote(_ job: Job) -> String? {
        guard let max = job.array?.maxRunning, (arrayRunning[job.id] ?? 0) >= max else { return nil }
        return "waiting: \(arrayRunning[job.id] ?? 0) of its tasks run, its limit (%\(max))"
    }

    /// Cancels an array (`mgpu cancel ID`): its record (the tasks not started) and every task of it that has not ended.
    /// Nil when `id` is no array. The outcome: CANCELLED if nothing ran, else cancelling.
    func cancelArray(_ id: JobID, by user: Credentials.User?, now: Double, changed: inout [Job],
                     records: inout [JobID: Job]) -> CancelResponse.Result? {
        let record = (records[id] ?? jobs[id]).flatMap { $0.array != nil ? $0 : nil }
        let tasks = (arrayTasks[id] ?? []).sorted().compactMap { jobs[$0] }
        guard record != nil || !tasks.isEmpty else { return nil }
        let owner = record?.user ?? tasks[0].user
        if let user, !user.admin && user.name != owner { return .init(id: id.rawValue, outcome: .denied, state: record?.state) }
        var outcome: CancelResponse.Result.Outcome = .alreadyFinished
        for var job in (record.map { [$0] } ?? []) + tasks {
            switch job.state {
            case .pending:
                job.cancelRequested = true
                job.reason = "cancelled while pending"
                try? job.transition(to: .cancelled, at: now)
                if job.array != nil { records[id] = job } else { changed.append(job) }
                if outcome == .alreadyFinished { outcome = .cancelled }
            case .running:
                if !job.cancelRequested {
                    job.cancelRequested = true
                    job.reason = "cancelled by user"
                    changed.append(job)
                }
                outcome = .cancelling
            default: break
            }
        }
        return .init(id: id.rawValue, outcome: outcome, state: outcome == .cancelling ? .running : .cancelled)
    }

    /// Cancels a task that has not started (`mgpu cancel ID_N`): it leaves its array's record and is kept as a
    /// CANCELLED job of its own. Nil when no record holds it.
    func cancelPendingTask(_ id: JobID, by user: Credentials.User?, now: Double, changed: inout [Job],
                           records: inout [JobID: Job]) -> CancelResponse.Result? {
        guard let parent = id.arrayParent, let record = records[parent] ?? jobs[parent], record.state == .pending,
              let index = id.arrayIndex, record.array?.pending.contains(index) == true else { return nil }
        if let user, !user.admin && user.name != record.user { return .init(id: id.rawValue, outcome: .denied, state: .pending) }
        guard var task = splitTask(id, records: &records) else { return nil }
        task.cancelRequested = true
        task.reason = "cancelled while pending"
        try? task.transition(to: .cancelled, at: now)
        changed.append(task)
        return .init(id: id.rawValue, outcome: .cancelled, state: .cancelled)
    }
}
