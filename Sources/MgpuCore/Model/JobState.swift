/// The job state machine. Written down in docs/ARCHITECTURE.md; `canTransition(to:)` enforces it.
///
///     PENDING ──▶ RUNNING ──▶ COMPLETED | FAILED | CANCELLED | NODE_FAIL | TIMEOUT
///        │  ▲         │
///        │  └─────────┘  a --requeue job whose node was lost goes back to PENDING
///        └──────────────────▶ CANCELLED
public enum JobState: String, Codable, Sendable, CaseIterable {
    case pending = "PENDING"
    case running = "RUNNING"
    case completed = "COMPLETED"
    case failed = "FAILED"
    case cancelled = "CANCELLED"
    case nodeFail = "NODE_FAIL"
    case timeout = "TIMEOUT"

    public var isTerminal: Bool {
        switch self {
        case .pending, .running: false
        case .completed, .failed, .cancelled, .nodeFail, .timeout: true
        }
    }

    public func canTransition(to next: JobState) -> Bool {
        switch (self, next) {
        case (.pending, .running), (.pending, .cancelled), (.running, .pending): true
        case (.running, .completed), (.running, .failed), (.running, .cancelled), (.running, .nodeFail), (.running, .timeout): true
        default: false
        }
    }
}

public struct InvalidTransition: Error, CustomStringConvertible {
    public let job: JobID
    public let from: JobState
    public let to: JobState
    public var description: String { "job \(job) cannot go from \(from.rawValue) to \(to.rawValue)" }
}
