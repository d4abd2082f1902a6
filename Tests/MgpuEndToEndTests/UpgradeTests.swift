import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

extension EndToEndTests {
    /// Upgrades: this mgpu opens a state dir written by the previous release (Fixtures/state-0.1.0, made by that
    /// release's own binary) and finds every job, its output, users and tokens.
    @Suite struct UpgradeTests {
        static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/state-0.1.0").path

        @Test func aStateDirOfThePreviousReleaseOpensWithEveryJob() async throws {
            let cluster = try TestCluster()
            defer { cluster.stop() }
            try FileManager.default.copyItem(atPath: Self.fixture, toPath: cluster.dir + "/state")
            chmod(cluster.dir + "/state", 0o700)
            try await cluster.startMaster()
            let root = try #require(cluster.read("state/tokens/root")?.trimmingCharacters(in: .whitespacesAndNewlines))
            let env = ["MGPU_TOKEN": root]
            let queue = try JSONDecoder().decode(QueueResponse.self, from: Data(try await cluster.mgpu(["queue", "--json"], env: env).stdout.utf8))
            let found = Dictionary(uniqueKeysWithValues: queue.jobs.map { ($0.id.rawValue, "\($0.name) \($0.user) \($0.state.rawValue)") })
            #expect(found["F2BC2D25"] == "still-running root RUNNING", "a job running when the old master stopped still runs")
            #expect(found["0F3B8772"] == "waiting-2 root PENDING")
            #expect(found["8A9FAD9D"] == "nobodys-wait nobody PENDING")
            // Every job, ended ones included, through the history the new schema (v4) added.
            let history = try await cluster.mgpu(["history", "--all-users", "--since", "3000d", "--json"], env: env)
            let records = try JSONDecoder().decode(HistoryResponse.self, from: Data(history.stdout.utf8)).records
            let ended = Dictionary(uniqueKeysWithValues: records.map { ($0.id.rawValue, "\($0.name) \($0.user) \($0.state.rawValue)") })
            #expect(ended["C0DFB24A"] == "done-ok root COMPLETED", "\(ended)")
            #expect(ended["63CAFF4E"] == "failed-4 root FAILED")
            #expect(ended["00498074"] == "cpu-cancelled root CANCELLED")
            let logs = try await cluster.mgpu(["logs", "C0DFB24A"], env: env)
            #expect(logs.stdout == "hello from 0.1\n", "its output: \(logs)")
            let failed = try await cluster.mgpu(["logs", "63CAFF4E"], env: env)
            #expect(failed.stderr.contains("oops"))
            // Its users and tokens still work: nobody sees only their own history.
            let nobody = try #require(cluster.read("state/tokens/nobody")?.trimmingCharacters(in: .whitespacesAndNewlines))
            let theirs = try await cluster.mgpu(["history", "--since", "3000d", "--json"], env: ["MGPU_TOKEN": nobody])
            #expect(try theirs.status == 0 && (JSONDecoder().decode(HistoryResponse.self, from: Data(theirs.stdout.utf8)).records.isEmpty))
            // New jobs get ids after the old ones and run on a node of this release.
            try cluster.startAgent("node002", gpus: 2)
            try await cluster.waitForNodes(["node002"])
            let fresh = try await cluster.submit(["--gpus", "0", "echo new"], env: env)
            try await cluster.waitForState(fresh, [.completed])
        }
    }
}
