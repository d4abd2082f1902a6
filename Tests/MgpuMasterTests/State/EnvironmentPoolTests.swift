@testable import MgpuMaster
import MgpuCore
import MgpuWire
import Testing

/// Equal environments are one dictionary in the master's memory, however many submissions sent them.
@Suite struct EnvironmentPoolTests {
    /// The storage a dictionary's value points to (a native dictionary is one reference).
    static func storage(_ environment: [String: String]?) -> UInt {
        guard let environment else { return 0 }
        return unsafeBitCast(environment, to: UInt.self)
    }

    static func login(home: String = "/home/alice") -> [String: String] {
        var environment = (0..<40).reduce(into: [String: String]()) { $0["VAR_\($1)"] = "value of variable number \($1)" }
        environment["HOME"] = home
        return environment
    }

    @Test func equalEnvironmentsFromSeparateSubmissionsShareOneDictionary() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1, plan: { _ in nil })
        let a = try await h.submit("a") { $0.environment = Self.login() }
        let b = try await h.submit("b") { $0.environment = Self.login() }
        let c = try await h.submit("c") { $0.environment = Self.login(home: "/home/bob") }
        let jobs = await h.master.jobs
        #expect(jobs[a]?.environment == Self.login() && jobs[c]?.environment == Self.login(home: "/home/bob"))
        #expect(Self.storage(jobs[a]?.environment) == Self.storage(jobs[b]?.environment), "one dictionary for both")
        #expect(Self.storage(jobs[a]?.environment) != Self.storage(jobs[c]?.environment))
        // Started, the job keeps the shared dictionary.
        try await h.settle()
        let started = await h.master.jobs
        #expect(started[a]?.state == .running)
        #expect(Self.storage(started[a]?.environment) == Self.storage(started[b]?.environment))
    }

    @Test func thePoolNeverMixesUpEnvironments() {
        var pool = EnvironmentPool()
        var seen: [[String: String]] = []
        for n in 0..<5000 {
            let environment = ["N": "\(n % 300)", "HOME": "/home/u\(n % 7)"]
            let interned = pool.intern(environment)
            #expect(interned == environment)
            seen.append(interned)
        }
        #expect(Self.storage(seen[0]) == Self.storage(seen[2100]), "equal ones are shared")
        #expect(pool.intern([:]).isEmpty)
    }
}
