public import MgpuCore

/// A job as a listing shows it, before it is made a JobInfo: the job as the master keeps it (one reference to its
/// fields, not a copy of them) and what the master works out about it as of the listing. `info` is the listing's row.
/// A JobInfo inline is 720 bytes: a JSON listing of 23,000 jobs made 16 MB of them for each answer, and its kept rows
/// (QueueJSON) held as much again.
public struct ListedJob: Sendable {
    public let job: Job
    /// For a pending job, what it waits for; for a running one, "node not responding" and the like.
    public let note: String?
    /// What only the master knows of a running or pending job; nil for the rest.
    public let live: Live?

    /// A running job's usage so far and when it was marked idle; a pending job's priority and expected start.
    public final class Live: Sendable, Equatable {
        public let usage: JobUsage?
        public let idleSince: Double?
        public let priority: Priority?
        public let expectedStart: Double?
        public init(usage: JobUsage? = nil, idleSince: Double? = nil, priority: Priority? = nil, expectedStart: Double? = nil) {
            self.usage = usage
            self.idleSince = idleSince
            self.priority = priority
            self.expectedStart = expectedStart
        }
        public static func == (a: Live, b: Live) -> Bool {
            a.usage == b.usage && a.idleSince == b.idleSince && a.priority == b.priority && a.expectedStart == b.expectedStart
        }
    }

    public init(job: Job, note: String?, live: Live?) {
        self.job = job
        self.note = note
        self.live = live
    }

    /// The row: the job's fields, the note, and a running job's usage so far in place of the usage it has kept (its
    /// usage over time only with `series`).
    public func info(series: Bool = false) -> JobInfo {
        var info = JobInfo(job: job, note: note)
        if let live {
            if job.state == .running { info.usage = live.usage }
            info.idleSince = live.idleSince
            info.priority = live.priority
            info.expectedStart = live.expectedStart
        }
        if !series { info.usage?.series = nil }
        return info
    }

    /// True when `info` is the same row as `other`'s: the same fields of the job (not copies: see Job.sharesFields),
    /// the same note and the same live values. False may still be the same row.
    public func sameRow(as other: ListedJob) -> Bool {
        job.sharesFields(with: other.job) && note == other.note && live == other.live
    }
}
