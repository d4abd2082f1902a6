/// The result of one scheduling pass: which pending jobs start, and where.
/// The master applies a plan to its store in one transaction.
public struct Plan: Sendable, Equatable {
    public struct Assignment: Sendable, Equatable {
        public var job: JobID
        /// One entry per node, in rank order.
        public var parts: [Placement]
    }

    public struct Placement: Sendable, Equatable {
        public var nodeId: String
        public var gpus: [Int]
        public init(nodeId: String, gpus: [Int]) {
            self.nodeId = nodeId
            self.gpus = gpus
        }
    }

    public var assignments: [Assignment] = []
    /// Jobs (of those examined) that wait because of a limit, with the limit in words.
    public var held: [JobID: String] = [:]
    /// The policy pass's reservation: the highest-priority job that waits for GPUs, and when they will be free by the
    /// running jobs' time limits.
    public var reservation: Reservation?

    /// Running `--preemptible` jobs to stop, each for the waiting job that needs its GPUs (they go back to the queue).
    public var preemptions: [Preemption] = []

    public struct Preemption: Sendable, Equatable {
        public var victim: JobID
        public var forJob: JobID
    }

    public struct Reservation: Sendable, Equatable {
        public var job: JobID
        public var start: Double
    }

    public init() {}
}
