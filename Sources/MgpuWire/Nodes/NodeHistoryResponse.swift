/// `GET /v1/nodes/{id}/history?minutes=M&points=P`: readings of the last M minutes, averaged into at most P points.
/// Missing readings are null.
public struct NodeHistoryResponse: Codable, Sendable {
    public struct GPUSeries: Codable, Sendable {
        public var index: Int
        public var utilization: [Double?]
        public var memoryUsedMB: [Double?]
        public init(index: Int, utilization: [Double?], memoryUsedMB: [Double?]) {
            self.index = index
            self.utilization = utilization
            self.memoryUsedMB = memoryUsedMB
        }
    }
    public var node: String
    public var times: [Double]
    public var cpuPercent: [Double?]
    public var memoryUsedMB: [Double?]
    public var gpus: [GPUSeries]

    public init(node: String, times: [Double], cpuPercent: [Double?], memoryUsedMB: [Double?], gpus: [GPUSeries]) {
        self.node = node
        self.times = times
        self.cpuPercent = cpuPercent
        self.memoryUsedMB = memoryUsedMB
        self.gpus = gpus
    }
}
