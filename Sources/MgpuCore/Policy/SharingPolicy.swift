#if canImport(Glibc)
import Glibc  // exp2
#elseif canImport(Darwin)
import Darwin
#endif

/// How the cluster is shared among people: the order pending jobs are served in, what each user and account may hold,
/// and the time limits backfill plans with. Set with `mgpu master` flags and `mgpu admin account/user`; a change takes
/// effect at the next scheduling pass.
public struct SharingPolicy: Codable, Sendable, Equatable {
    public enum Order: String, Codable, Sendable, CaseIterable {
        /// Submission order; a waiting job reserves the GPUs it waits for (mgpu before fair share).
        case fifo
        /// By priority (fair share + age + nice), with EASY backfill.
        case fairShare = "fair-share"

        /// By name: "fair-share" (also "default", the default policy) or "fifo".
        public init?(name: String) {
            if name == "default" { self = .fairShare } else { self.init(rawValue: name) }
        }
    }

    public var order: Order = .fairShare
    /// Usage (GPU-seconds) loses half its weight every `halfLife` seconds.
    public var halfLife: Double = 7 * 86_400
    /// A waiting job gains one unit of priority (the whole range of the fair-share factor) per `ageScale` seconds of
    /// waiting, without a cap: so every job's turn comes, however heavy its user.
    public var ageScale: Double = 36 * 3600
    /// The time limit a job submitted without `--time` gets (and backfill plans with); nil: none (such a job is planned
    /// as if it never ended).
    public var defaultTime: Double? = 7 * 86_400
    /// The longest `--time` accepted; nil: any.
    public var maxTime: Double?
    public var accounts: [String: Account] = [:]
    public var users: [String: UserSettings] = [:]

    public init() {}

    /// What a user or an account may hold at once. Nil: no limit.
    public struct Limits: Codable, Sendable, Equatable {
        /// GPUs in use by running jobs.
        public var maxGPUs: Int?
        /// Running jobs.
        public var maxRunning: Int?
        /// Pending jobs (a submission past it is refused).
        public var maxPending: Int?
        public init(maxGPUs: Int? = nil, maxRunning: Int? = nil, maxPending: Int? = nil) {
            self.maxGPUs = maxGPUs
            self.maxRunning = maxRunning
            self.maxPending = maxPending
        }
        public var isEmpty: Bool { maxGPUs == nil && maxRunning == nil && maxPending == nil }
    }

    /// A group of users with shares of its own (Slurm's associations): its users split its share.
    public struct Account: Codable, Sendable, Equatable {
        public var shares: Double = 1
        public var limits = Limits()
        public init(shares: Double = 1, limits: Limits = Limits()) {
            self.shares = shares
            self.limits = limits
        }
    }

    public struct UserSettings: Codable, Sendable, Equatable {
        public var account: String?
        public var shares: Double = 1
        public var limits = Limits()
        /// Where the user's jobs notify by default (a job's own `--notify` wins).
        public var notify: String?
        public init(account: String? = nil, shares: Double = 1, limits: Limits = Limits(), notify: String? = nil) {
            self.account = account
            self.shares = shares
            self.limits = limits
            self.notify = notify
        }
    }

    /// The account users without one belong to.
    public static let defaultAccount = "default"

    public func account(of user: String) -> String { users[user]?.account ?? Self.defaultAccount }
    public func shares(of user: String) -> Double { users[user]?.shares ?? 1 }
    public func limits(of user: String) -> Limits { users[user]?.limits ?? Limits() }
    public func accountLimits(_ account: String) -> Limits { accounts[account]?.limits ?? Limits() }
    public func accountShares(_ account: String) -> Double { accounts[account]?.shares ?? 1 }

    /// The time limit a job is planned with: its own, or the default (none: it never ends, as far as planning knows).
    public func timeLimit(_ own: Double?) -> Double { own ?? defaultTime ?? .infinity }
}

/// A user's GPU-seconds, decayed: what fair share weighs.
public struct Usage: Codable, Sendable, Equatable {
    public var gpuSeconds: Double = 0
    /// When `gpuSeconds` was last brought up to date.
    public var at: Double = 0

    public init(gpuSeconds: Double = 0, at: Double = 0) {
        self.gpuSeconds = gpuSeconds
        self.at = at
    }

    public func decayed(to now: Double, halfLife: Double) -> Double {
        guard now > at, halfLife > 0 else { return gpuSeconds }
        return gpuSeconds * exp2(-(now - at) / halfLife)
    }

    /// Adds `gpuSeconds` used at `now`.
    public mutating func add(_ used: Double, at now: Double, halfLife: Double) {
        gpuSeconds = decayed(to: now, halfLife: halfLife) + used
        at = max(at, now)
    }
}
