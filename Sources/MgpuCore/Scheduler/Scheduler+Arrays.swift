extension Scheduler {
    /// The queue one pass works on, arrays expanded: an array's record (`array(id)` non-nil) stands for its next tasks
    /// `ID_N`, at most as many as its `%MAX` allows (counting its running tasks, `running(id)`, and its requeued tasks
    /// waiting in the queue, which are jobs of their own) and as the free GPUs or CPU slots could take, plus one (to
    /// wait, and hold a reservation). A requeued task over its array's `%MAX` (`taskLimit(id)`) is left out.
    public static func expandArrays(_ queue: [PendingJob], nodes: [NodeCapacity], array: (JobID) -> JobArray?,
                                    taskLimit: (JobID) -> Int?, running: (JobID) -> Int) -> [PendingJob] {
        let freeGPUs = nodes.lazy.filter(\.schedulable).reduce(0) { $0 + $1.freeGPUs.count }
        let freeSlots = nodes.lazy.filter(\.schedulable).reduce(0) { $0 + max(0, $1.cpuSlots - $1.cpuSlotsUsed) }
        var budget: [JobID: Int] = [:]
        func take(_ parent: JobID, limit: Int?, wanted: Int) -> Int {
            guard let limit else { return wanted }
            let left = budget[parent] ?? max(0, limit - running(parent))
            let given = min(left, wanted)
            budget[parent] = left - given
            return given
        }
        var result: [PendingJob] = []
        result.reserveCapacity(queue.count)
        for job in queue {
            if let parent = job.id.arrayParent {
                // A requeued task: a job of its own, still under its array's limit.
                if take(parent, limit: taskLimit(job.id), wanted: 1) == 1 { result.append(job) }
                continue
            }
            guard let record = array(job.id) else {
                result.append(job)
                continue
            }
            let size = max(1, job.request.totalGPUs)
            let fits = job.request.isCPUOnly ? freeSlots / max(1, job.request.nodeCount) : freeGPUs / size
            let count = take(job.id, limit: record.maxRunning, wanted: min(record.pending.count, fits + 1))
            for index in record.pending.prefix(count) {
                var task = job
                task.id = JobID(parent: job.id, index: index)
                result.append(task)
            }
        }
        return result
    }
}
