/// A pending job's priority and its parts. The formula (docs/ARCHITECTURE.md):
///
///     priority  = fairShare + age - nice / 1000
///     fairShare = 2^(-usageShare / shareShare)         in (0, 1]; 1 for a user who has used nothing
///     age       = waited / ageScale                     no cap: every job's turn comes
///
/// `usageShare` is the user's decayed GPU-seconds (running jobs included) over everyone's; `shareShare` is the user's
/// part of the shares: its account's shares over all accounts' (of users with jobs or usage), split among the account's
/// users by their own shares. (Slurm's classic fair-share factor, with an age factor that is not capped at a maximum
/// age, so that a heavy user's oldest jobs cannot starve behind everyone else's.)
public struct Priority: Codable, Sendable, Equatable {
    public var value: Double
    public var fairShare: Double
    public var age: Double
    public var nice: Double

    public init(value: Double, fairShare: Double, age: Double, nice: Double) {
        self.value = value
        self.fairShare = fairShare
        self.age = age
        self.nice = nice
    }
}

public enum FairShare {
    /// Each user's fair-share factor. `users`: those with jobs or usage; `usage`: their decayed GPU-seconds.
    public static func factors(users: Set<String>, usage: [String: Double], policy: SharingPolicy) -> [String: Double] {
        // Sums in a fixed order (Set order varies between processes): the same inputs give the same factors.
        let users = users.sorted()
        let total = users.reduce(0) { $0 + max(0, usage[$1] ?? 0) }
        var byAccount: [String: [String]] = [:]
        for user in users { byAccount[policy.account(of: user), default: []].append(user) }
        let accountTotal = byAccount.keys.sorted().reduce(0) { $0 + max(0, policy.accountShares($1)) }
        var factors: [String: Double] = [:]
        for (account, members) in byAccount {
            let memberTotal = members.reduce(0) { $0 + max(0, policy.shares(of: $1)) }
            for user in members {
                let share = accountTotal > 0 && memberTotal > 0
                    ? max(0, policy.accountShares(account)) / accountTotal * max(0, policy.shares(of: user)) / memberTotal : 0
                let used = total > 0 ? max(0, usage[user] ?? 0) / total : 0
                factors[user] = share > 0 ? exp2Approx(-used / share) : (used > 0 ? 0 : 1)
            }
        }
        return factors
    }

    public static func priority(factor: Double, submitTime: Double, nice: Int, now: Double, policy: SharingPolicy) -> Priority {
        let age = max(0, now - submitTime) / max(1, policy.ageScale)
        let niceTerm = Double(nice) / 1000
        return Priority(value: factor + age - niceTerm, fairShare: factor, age: age, nice: niceTerm)
    }

    /// 2^x for x <= 0 (a factor in (0, 1]).
    static func exp2Approx(_ x: Double) -> Double {
        Usage(gpuSeconds: 1, at: 0).decayed(to: -x, halfLife: 1)
    }
}
