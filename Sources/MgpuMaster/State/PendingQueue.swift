import MgpuCore

/// The pending jobs in submission order, as the scheduler reads them, and how many of them need no GPU.
struct PendingQueue {
    private(set) var jobs: [PendingJob] = []
    /// Each job's submission number, beside it (ascending).
    private var seqs: [Int64] = []
    private(set) var cpuOnly = 0

    var isEmpty: Bool { jobs.isEmpty }
    var count: Int { jobs.count }

    /// Adds a job at its place in submission order: the end for a new one, further in for a requeued one.
    mutating func insert(_ job: Job) {
        var at = seqs.endIndex
        if let last = seqs.last, last > job.seq { at = seqs.firstIndex { $0 > job.seq } ?? seqs.endIndex }
        jobs.insert(PendingJob(id: job.id, request: job.request, user: job.user, timeLimit: job.timeLimit,
                                preemptible: job.preemptible == true), at: at)
        seqs.insert(job.seq, at: at)
        if job.request.isCPUOnly { cpuOnly += 1 }
    }

    /// Removes these jobs (they started, or were cancelled), in one pass.
    mutating func remove(_ ids: Set<JobID>) {
        guard !ids.isEmpty else { return }
        var keptJobs: [PendingJob] = [], keptSeqs: [Int64] = []
        keptJobs.reserveCapacity(jobs.count)
        keptSeqs.reserveCapacity(jobs.count)
        for (job, seq) in zip(jobs, seqs) where !ids.contains(job.id) {
            keptJobs.append(job)
            keptSeqs.append(seq)
        }
        jobs = keptJobs
        seqs = keptSeqs
        cpuOnly = jobs.reduce(0) { $0 + ($1.request.isCPUOnly ? 1 : 0) }
    }
}
