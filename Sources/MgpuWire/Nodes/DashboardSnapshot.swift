/// One event of `/v1/events`: everything the dashboard shows.
public struct DashboardSnapshot: Codable, Sendable {
    public var now: Double
    public var jobs: [JobInfo]
    public var nodes: [NodeInfo]
    /// The last 15 minutes of each node's readings, in at most 60 points.
    public var history: [String: NodeHistoryResponse]

    public init(now: Double, jobs: [JobInfo], nodes: [NodeInfo], history: [String: NodeHistoryResponse]) {
        self.now = now
        self.jobs = jobs
        self.nodes = nodes
        self.history = history
    }
}
