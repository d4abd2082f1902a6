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

    /// Removes these jobs (id and submission number: they started, or were cancelled). Each is found by its number
    /// (a binary search); a few leave with the rest moving up in place, many in one pass. (Rebuilding the queue for
    /// every job that started cost a copy of the whole queue: 0.5 ms a start with 10,000 waiting.)
    mutating func remove(_ leaving: [JobID: Int64]) {
        guard !leaving.isEmpty else { return }
        var at: [Int] = []
        at.reserveCapacity(leaving.count)
        for (id, seq) in leaving {
            if let i = index(of: id, seq: seq) { at.append(i) }
        }
        if at.count <= 16 {
            for i in at.sorted(by: >) {
                if jobs[i].request.isCPUOnly { cpuOnly -= 1 }
                jobs.remove(at: i)
                seqs.remove(at: i)
            }
            return
        }
        let gone = Set(at)
        var keptJobs: [PendingJob] = [], keptSeqs: [Int64] = []
        keptJobs.reserveCapacity(jobs.count - gone.count)
        keptSeqs.reserveCapacity(jobs.count - gone.count)
        for i in jobs.indices where !gone.contains(i) {
            keptJobs.append(jobs[i])
            keptSeqs.append(seqs[i])
        }
        jobs = keptJobs
        seqs = keptSeqs
        cpuOnly = jobs.reduce(0) { $0 + ($1.request.isCPUOnly ? 1 : 0) }
    }

    /// Where the job `id` is: among those with its submission number (found by binary search); else, should the
    /// number not be its own, anywhere.
    private func index(of id: JobID, seq: Int64) -> Int? {
        var low = 0, high = seqs.count
        while low < high {
            let mid = (low + high) / 2
            if seqs[mid] < seq { low = mid + 1 } else { high = mid }
        }
        var i = low
        while i < seqs.count, seqs[i] == seq {
            if jobs[i].id == id { return i }
            i += 1
        }
        return jobs.firstIndex { $0.id == id }
    }
}
