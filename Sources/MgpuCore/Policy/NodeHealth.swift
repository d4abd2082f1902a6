/// A node that drains itself: when its site health check fails, or every one of its GPUs is unhealthy, it takes no new
/// jobs (running ones finish), with the reason; once the check passes and a GPU is healthy again it resumes. A drain
/// an admin made is never lifted here, and a health drain is only ever lifted here or by an admin.
public enum NodeHealth {
    /// `NodeDrain.by` of a node that drained itself.
    public static let drainer = "health check"

    /// Why the node should be drained now, by its latest sample, or nil.
    public static func failure(_ sample: NodeTelemetry?, gpuCount: Int) -> String? {
        guard let sample else { return nil }
        if let failing = sample.healthCheck { return "health check failed: \(failing)" }
        let unhealthy = sample.gpus.filter { $0.unhealthy != nil }
        guard gpuCount > 0, unhealthy.count >= gpuCount else { return nil }
        return "every GPU unhealthy: " + unhealthy.map { "gpu\($0.index) \($0.unhealthy!)" }.joined(separator: "; ")
    }

    public enum Change: Equatable, Sendable {
        case none
        case drain(String)
        case resume
    }

    /// What to do with the node's drain, given why it should be drained now (nil: nothing is wrong).
    public static func change(current: NodeDrain?, failure: String?) -> Change {
        let reason = failure.map { String($0.prefix(200)) }
        switch (current, reason) {
        case (nil, let reason?): return .drain(reason)
        case (let drain?, let reason?) where drain.by == drainer && drain.reason != reason: return .drain(reason)
        case (let drain?, nil) where drain.by == drainer: return .resume
        default: return .none
        }
    }
}
