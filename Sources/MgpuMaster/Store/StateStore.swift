import MgpuCore

/// Everything the master persists, as loaded at start-up.
public struct StoredState: Sendable {
    public var jobs: [Job]
    public var nodes: [Node]
}

/// One atomic change: every job and node in it is written in one transaction, or none is.
public struct StoreChange: Sendable {
    public var jobs: [Job] = []
    public var nodes: [Node] = []
    /// Nodes an admin removed.
    public var removedNodes: [String] = []
    public init(jobs: [Job] = [], nodes: [Node] = [], removedNodes: [String] = []) {
        self.jobs = jobs
        self.nodes = nodes
        self.removedNodes = removedNodes
    }
    public var isEmpty: Bool { jobs.isEmpty && nodes.isEmpty && removedNodes.isEmpty }
}

/// The master's durable store. SQLite (`SQLiteStore`) by default; a PostgreSQL implementation
/// only needs these three calls. `commit` returns only once the change is durable.
public protocol StateStore: Sendable {
    func load() throws -> StoredState
    func commit(_ change: StoreChange) throws
    func close() throws
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
