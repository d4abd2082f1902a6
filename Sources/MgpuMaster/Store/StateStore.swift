import MgpuCore

/// Everything the master persists, as loaded at start-up.
public struct StoredState: Sendable {
    /// Jobs pending or running, and those that ended since the time `load` was given.
    public var jobs: [Job]
    public var nodes: [Node]
    /// The highest submission number ever given (ended jobs included).
    public var maxSeq: Int64 = 0
    /// Each user's decayed GPU-seconds (fair share).
    public var usage: [String: Usage] = [:]
    /// Accounts and users' settings, as admins set them.
    public var policy: SharingPolicy?
}

/// One atomic change: every job and node in it is written in one transaction, or none is.
public struct StoreChange: Sendable {
    public var jobs: [Job] = []
    public var nodes: [Node] = []
    /// Nodes an admin removed.
    public var removedNodes: [String] = []
    /// Array jobs' records whose every task has started (each task is a job of its own).
    public var removedJobs: [JobID] = []
    /// Users whose usage changed (a job of theirs ended).
    public var usage: [String: Usage] = [:]
    /// The sharing policy's accounts and users, when an admin changed them.
    public var policy: SharingPolicy?
    public init(jobs: [Job] = [], nodes: [Node] = [], removedNodes: [String] = [], usage: [String: Usage] = [:],
                policy: SharingPolicy? = nil, removedJobs: [JobID] = []) {
        self.jobs = jobs
        self.removedJobs = removedJobs
        self.nodes = nodes
        self.removedNodes = removedNodes
        self.usage = usage
        self.policy = policy
    }
    public var isEmpty: Bool {
        jobs.isEmpty && nodes.isEmpty && removedNodes.isEmpty && usage.isEmpty && policy == nil && removedJobs.isEmpty
    }
}

/// The master's durable store. SQLite (`SQLiteStore`) by default; a PostgreSQL implementation
/// only needs these calls. `commit` returns only once the change is durable.
public protocol StateStore: Sendable {
    /// What the master holds in memory: every job not ended, those that ended at or after `endedSince`, every node.
    func load(endedSince: Double) throws -> StoredState
    /// One job, wherever it is (ended jobs leave memory, never the store).
    func job(_ id: JobID) throws -> Job?
    func commit(_ change: StoreChange) throws
    /// `commit` for a caller that may suspend instead of blocking its thread (a submission): a store that writes
    /// concurrent changes together (`SQLiteStore`) answers each once its own is durable.
    func groupCommit(_ change: StoreChange) async throws
    /// Which of `ids` the store holds, as a job or as the array of a task it holds (ended jobs leave memory, never the
    /// store).
    func existingJobIDs(_ ids: [JobID]) throws -> Set<JobID>
    /// The tasks of array job `parent` that it holds.
    func tasks(of parent: JobID) throws -> [Job]
    /// Ended jobs, newest first (`mgpu history`).
    func history(_ query: HistoryQuery) throws -> [Job]
    /// Forgets jobs that ended before `time` (`--history-days`); how many.
    func pruneHistory(endedBefore time: Double) throws -> Int
    func close() throws
}

extension StateStore {
    public func groupCommit(_ change: StoreChange) async throws { try commit(change) }
}

/// A store failure, with a message for the user (e.g. the disk is full).
public struct StoreError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A request about someone else's job.
public struct OwnershipError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
