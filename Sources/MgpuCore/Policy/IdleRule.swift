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

    /// When the job has been idle since, given a new sample of its GPUs' utilisation (percent) on one of its nodes:
    /// nil as soon as one is at or over the threshold; unchanged when the sample has no reading.
    public func since(_ previous: Double?, utilizations: [Double?], now: Double) -> Double? {
        let readings = utilizations.compactMap { $0 }
        guard !readings.isEmpty else { return previous }
        return readings.allSatisfy { $0 < threshold } ? (previous ?? now) : nil
    }

    /// What an idle job's time calls for: to be marked idle, and to be cancelled.
    public func verdict(since: Double, now: Double, interactive jobIsInteractive: Bool) -> (idle: Bool, cancel: Bool) {
        guard !jobIsInteractive || interactive else { return (false, false) }
        let idle = now - since >= after
        return (idle, idle && action == .cancel && now - since >= max(after, cancelAfter))
    }
}
