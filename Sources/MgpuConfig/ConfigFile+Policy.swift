import MgpuCore
import MgpuWire

extension ConfigFile {
    /// `[policy]`'s keys, as `mgpu master`'s flags: `policy`, `default_time`, `max_time`, `fair_share_half_life`,
    /// `age_scale`; and the tables `[policy.accounts.NAME]` (shares, max_gpus, max_running, max_pending) and
    /// `[policy.users.NAME]` (the same, and account).
    public static let policyKeys = ["policy", "default_time", "max_time", "fair_share_half_life", "age_scale"]
    static let limitKeys = ["shares", "max_gpus", "max_running", "max_pending"]

    /// The sharing policy: `base` with what `[policy]` sets. Keys left out keep `base`'s values.
    public func policy(over base: SharingPolicy) throws(ConfigError) -> SharingPolicy {
        let section = section("policy")
        try section.check(known: Self.policyKeys, tables: ["accounts", "users"])
        var policy = base
        if let name = try section.string("policy") {
            guard let order = SharingPolicy.Order(name: name) else {
                throw section.fail("policy", "policy in [policy] is fair-share (or default) or fifo, got \(String(reflecting: name))")
            }
            policy.order = order
        }
        if let value = try section.duration("default_time", allowNone: true) { policy.defaultTime = value }
        if let value = try section.duration("max_time", allowNone: true) { policy.maxTime = value }
        if let value = try section.duration("fair_share_half_life") { policy.halfLife = value ?? policy.halfLife }
        if let value = try section.duration("age_scale") { policy.ageScale = value ?? policy.ageScale }
        if let def = policy.defaultTime, let max = policy.maxTime, def > max {
            throw section.fail("default_time", "default_time in [policy] is over its max_time")
        }
        for (name, table) in try section.tables("accounts") {
            guard SafeName.isValid(name) else { throw table.fail(name, "an account name is 1-64 letters, digits, '-', '_' or '.'; got \(String(reflecting: name))") }
            try table.check(known: Self.limitKeys)
            var account = policy.accounts[name] ?? SharingPolicy.Account()
            account.shares = try table.number("shares", range: 0...1_000_000) ?? account.shares
            account.limits = try Self.limits(table, over: account.limits)
            policy.accounts[name] = account
        }
        for (name, table) in try section.tables("users") {
            guard SafeName.isValid(name) else { throw table.fail(name, "a user name is 1-64 letters, digits, '-', '_' or '.'; got \(String(reflecting: name))") }
            try table.check(known: Self.limitKeys + ["account"])
            var user = policy.users[name] ?? SharingPolicy.UserSettings()
            if let account = try table.string("account") {
                guard account == SharingPolicy.defaultAccount || policy.accounts[account] != nil else {
                    let known = ([SharingPolicy.defaultAccount] + policy.accounts.keys.sorted()).joined(separator: ", ")
                    throw table.fail("account", "no account \(String(reflecting: account)) for user \(name) (accounts: \(known); add [policy.accounts.\(account)])")
                }
                user.account = account == SharingPolicy.defaultAccount ? nil : account
            }
            user.shares = try table.number("shares", range: 0...1_000_000) ?? user.shares
            user.limits = try Self.limits(table, over: user.limits)
            policy.users[name] = user
        }
        return policy
    }

    static func limits(_ table: ConfigSection, over base: SharingPolicy.Limits) throws(ConfigError) -> SharingPolicy.Limits {
        var limits = base
        if let n = try table.int("max_gpus", range: 0...10_000_000) { limits.maxGPUs = n }
        if let n = try table.int("max_running", range: 0...10_000_000) { limits.maxRunning = n }
        if let n = try table.int("max_pending", range: 0...10_000_000) { limits.maxPending = n }
        return limits
    }
}
