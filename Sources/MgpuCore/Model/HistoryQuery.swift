/// Which ended jobs `mgpu history` (sacct) asks for: newest first, at most `limit`.
public struct HistoryQuery: Sendable, Equatable {
    /// Only these users' jobs; nil: everyone's.
    public var users: [String]?
    public var states: [JobState]?
    /// Ended at or after `since`, before `until` (seconds since the epoch).
    public var since: Double?
    public var until: Double?
    /// Ran (a part) on this node.
    public var node: String?
    public var name: String?
    public var limit: Int

    public init(users: [String]? = nil, states: [JobState]? = nil, since: Double? = nil, until: Double? = nil,
                node: String? = nil, name: String? = nil, limit: Int = 1000) {
        self.users = users
        self.states = states
        self.since = since
        self.until = until
        self.node = node
        self.name = name
        self.limit = limit
    }

    /// Whether `job` is one it asks for (for stores that filter in memory; SQLite filters in SQL).
    public func matches(_ job: Job) -> Bool {
        guard job.state.isTerminal, let end = job.endTime else { return false }
        if let users, !users.contains(job.user) { return false }
        if let states, !states.contains(job.state) { return false }
        if let since, end < since { return false }
        if let until, end >= until { return false }
        if let node, !job.parts.contains(where: { $0.nodeId == node }) { return false }
        if let name, job.name != name { return false }
        return true
    }
}
