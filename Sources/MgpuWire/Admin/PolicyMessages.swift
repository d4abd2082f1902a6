public import MgpuCore

/// `PUT /v1/admin/accounts/{name}` and `PUT /v1/admin/policy/users/{name}` (admins only): what to change; what is left
/// out stays as it is. A limit of -1 removes that limit.
public struct PolicySettings: Codable, Sendable, Equatable {
    /// Users only: the account the user belongs to ("default" when none).
    public var account: String?
    public var shares: Double?
    public var maxGPUs: Int?
    public var maxRunning: Int?
    public var maxPending: Int?
    /// Users only: where their jobs notify by default ("" clears it).
    public var notify: String?

    public init(account: String? = nil, shares: Double? = nil, maxGPUs: Int? = nil, maxRunning: Int? = nil, maxPending: Int? = nil,
                notify: String? = nil) {
        self.notify = notify
        self.account = account
        self.shares = shares
        self.maxGPUs = maxGPUs
        self.maxRunning = maxRunning
        self.maxPending = maxPending
    }

    public func validationError() -> RequestError? {
        if let shares, !(shares >= 0 && shares <= 1_000_000) { return RequestError("shares must be 0-1000000") }
        for (name, value) in [("maxGPUs", maxGPUs), ("maxRunning", maxRunning), ("maxPending", maxPending)] {
            if let value, value < -1 || value > 10_000_000 { return RequestError("\(name) must be -1 (no limit) or 0-10000000") }
        }
        if let account, !SafeName.isValid(account) { return RequestError("an account name is 1-64 letters, digits, '-', '_' or '.'") }
        if let notify, !notify.isEmpty, !JobEvent.validURL(notify) {
            return RequestError("--notify takes an http:// or https:// URL with a host (at most 2048 characters, no spaces), or \"\" to clear it")
        }
        return nil
    }

    /// `limits` with these settings applied.
    public func applied(to limits: SharingPolicy.Limits) -> SharingPolicy.Limits {
        var result = limits
        func set(_ value: Int?, _ keyPath: WritableKeyPath<SharingPolicy.Limits, Int?>) {
            guard let value else { return }
            result[keyPath: keyPath] = value < 0 ? nil : value
        }
        set(maxGPUs, \.maxGPUs)
        set(maxRunning, \.maxRunning)
        set(maxPending, \.maxPending)
        return result
    }
}

/// `GET /v1/admin/policy`: the sharing policy, and each user's standing under it.
public struct PolicyReport: Codable, Sendable {
    public var policy: SharingPolicy
    public var users: [UserStanding]

    public struct UserStanding: Codable, Sendable {
        public var name: String
        public var account: String
        public var shares: Double
        public var limits: SharingPolicy.Limits
        /// Decayed GPU-hours (running jobs included): what fair share weighs.
        public var usageGPUHours: Double
        /// The user's fair-share factor now (1: has used nothing).
        public var fairShare: Double
        public var runningJobs: Int
        public var gpusInUse: Int
        public var pendingJobs: Int

        public init(name: String, account: String, shares: Double, limits: SharingPolicy.Limits, usageGPUHours: Double,
                    fairShare: Double, runningJobs: Int, gpusInUse: Int, pendingJobs: Int) {
            self.name = name
            self.account = account
            self.shares = shares
            self.limits = limits
            self.usageGPUHours = usageGPUHours
            self.fairShare = fairShare
            self.runningJobs = runningJobs
            self.gpusInUse = gpusInUse
            self.pendingJobs = pendingJobs
        }
    }

    public init(policy: SharingPolicy, users: [UserStanding]) {
        self.policy = policy
        self.users = users
    }
}
