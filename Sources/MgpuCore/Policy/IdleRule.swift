/// Idle GPUs: a running job whose GPUs all stay below `threshold` percent utilisation for `after` seconds is marked
/// idle (its owner is told); with `action` cancel, one idle for `cancelAfter` is cancelled. Interactive jobs are exempt
/// unless `interactive`.
public struct IdleRule: Sendable, Equatable {
    public enum Action: String, Codable, Sendable, CaseIterable {
        case warn, cancel
    }

    public var threshold: Double = 1
    public var after: Double = 30 * 60
    public var action: Action = .warn
    public var cancelAfter: Double = 60 * 60
    public var interactive = false

    public init() {}

    /// Since when a job's GPUs on one node have been idle, given a new sample of their utilisation (percent): nil as
    /// soon as one is at or over the threshold, or has no reading (what is not measured is not called idle).
    public func since(_ previous: Double?, utilizations: [Double?], now: Double) -> Double? {
        guard !utilizations.isEmpty, utilizations.allSatisfy({ $0.map { $0 < threshold } ?? false }) else { return nil }
        return previous ?? now
    }

    /// What an idle job's time calls for: to be marked idle, and to be cancelled.
    public func verdict(since: Double, now: Double, interactive jobIsInteractive: Bool) -> (idle: Bool, cancel: Bool) {
        guard !jobIsInteractive || interactive else { return (false, false) }
        let idle = now - since >= after
        return (idle, idle && action == .cancel && now - since >= max(after, cancelAfter))
    }
}
