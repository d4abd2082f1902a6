import MgpuConfig
import MgpuCore
import Testing

/// mgpu.toml's [policy]: what it sets, and one line naming the file, the line and the fix for what it cannot take.
@Suite struct ConfigFileTests {
    func policy(_ text: String) throws(ConfigError) -> SharingPolicy {
        try ConfigFile(text: text, path: "/etc/mgpu/mgpu.toml").policy(over: SharingPolicy())
    }

    func refusal(_ text: String) -> String? {
        do {
            _ = try policy(text)
            return nil
        } catch { return error.message }
    }

    @Test func aLabsPolicy() throws {
        let p = try policy("""
            # shares and limits of a lab
            [policy]
            policy = "fair-share"
            default_time = "2-00:00:00"
            max_time = 604800
            fair_share_half_life = "14-00:00:00"
            age_scale = "1-00:00:00"

            [policy.accounts.vision]
            shares = 2
            max_gpus = 32

            [policy.users.alice]
            account = "vision"
            max_gpus = 8
            max_pending = 500

            [policy.users.bob]
            shares = 0.5
            """)
        #expect(p.order == .fairShare && p.defaultTime == 2 * 86_400 && p.maxTime == 604_800)
        #expect(p.halfLife == 14 * 86_400 && p.ageScale == 86_400)
        #expect(p.accounts["vision"] == SharingPolicy.Account(shares: 2, limits: .init(maxGPUs: 32)))
        #expect(p.account(of: "alice") == "vision" && p.limits(of: "alice") == .init(maxGPUs: 8, maxPending: 500))
        #expect(p.shares(of: "bob") == 0.5 && p.account(of: "bob") == SharingPolicy.defaultAccount)
        #expect(try policy("[policy]\npolicy = \"default\"\ndefault_time = \"none\"").defaultTime == nil)
        #expect(try policy("[policy]\npolicy = \"fifo\"").order == .fifo)
        #expect(try policy("[master]\nport = 1\n") == SharingPolicy(), "other sections leave the policy alone")
    }

    @Test func badFilesAreRefusedInOneLine() {
        let cases: [(String, String)] = [
            ("[policy]\npolicy = \"fifo\"\ndefault_tme = \"1:00\"", "mgpu.toml:3: unknown key \"default_tme\" in [policy] (did you mean default_time?)"),
            ("[polcy]\npolicy = \"fifo\"", "mgpu.toml:1: unknown section \"polcy\" (did you mean [policy]?); the sections are [master], [node], [policy], [client]"),
            ("[policy]\npolicy = \"lottery\"", "mgpu.toml:2: policy in [policy] is fair-share (or default) or fifo, got \"lottery\""),
            ("[policy]\n\n[policy.users.alice]\nmax_gpus = \"8\"", "mgpu.toml:4: max_gpus in [policy.users.alice] must be an integer, got a string"),
            ("[policy.users.alice]\nmax_gpus = -2", "mgpu.toml:2: max_gpus in [policy.users.alice] must be 0-10000000, got -2"),
            ("[policy.users.alice]\naccount = \"vison\"", "mgpu.toml:2: no account \"vison\" for user alice (accounts: default; add [policy.accounts.vison])"),
            ("[policy]\ndefault_time = \"soon\"", "mgpu.toml:2: default_time in [policy] takes MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (a string), or seconds (a number), or \"none\"; got \"soon\""),
            ("[policy]\nage_scale = \"none\"", "mgpu.toml:2: age_scale in [policy] takes MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (a string), or seconds (a number); got \"none\""),
            ("[policy]\ndefault_time = \"8-00:00:00\"\nmax_time = \"7-00:00:00\"", "mgpu.toml:2: default_time in [policy] is over its max_time"),
            ("[policy.accounts.vision]\nshare = 2", "mgpu.toml:2: unknown key \"share\" in [policy.accounts.vision] (did you mean shares?)"),
        ]
        for (text, message) in cases { #expect(refusal(text) == message) }
        let syntax = refusal("[policy]\npolicy = fifo\n")
        #expect(syntax?.hasPrefix("mgpu.toml:2: ") == true && syntax?.contains("\n") == false, "\(syntax ?? "accepted")")
        #expect(throws: ConfigError.self) { try ConfigFile(path: "/nonexistent/mgpu.toml") }
    }
}
