import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

extension EndToEndTests {
    @Suite struct AuthTests {
        @Test func agentsNeedTheClusterSecret() async throws {
            let cluster = try TestCluster()
            defer { cluster.stop() }
            try await cluster.startMaster()
            try cluster.startAgent("intruder", gpus: 1, withSecret: false)
            try await waitUntil("the master refuses it", timeout: 15) {
                (try? String(contentsOfFile: try lastMasterLog(cluster), encoding: .utf8))?.contains("refused an agent without the cluster secret") == true
            }
            #expect(try await cluster.client.queue().nodes.isEmpty, "no node registered without the secret")
            try await waitUntil("the agent says why", timeout: 10) { cluster.agentLog("intruder")?.contains("cluster secret") == true }
            let attrs = try FileManager.default.attributesOfItem(atPath: cluster.secretFile)
            #expect((attrs[.posixPermissions] as? Int) == 0o600)
            let dirAttrs = try FileManager.default.attributesOfItem(atPath: cluster.dir + "/state")
            #expect((dirAttrs[.posixPermissions] as? Int) == 0o700)
        }

        @Test func usersSeeTheQueueButOnlyOwnersAndAdminsTouchAJob() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let noToken = try await cluster.mgpu(["queue"], env: ["MGPU_TOKEN": "", "HOME": cluster.dir, "MGPU_STATE_DIR": cluster.dir + "/none"])
            #expect(noToken.status == 1 && noToken.stderr.contains("no token"), "\(noToken.stderr)")
            let badToken = try await cluster.mgpu(["queue"], env: ["MGPU_TOKEN": String(repeating: "0", count: 64)])
            #expect(badToken.status == 1 && badToken.stderr.contains("does not know this token"))

            func add(_ name: String, admin: Bool = false) async throws -> String {
                let r = try await cluster.mgpu(["admin", "user", "add", name] + (admin ? ["--admin"] : []))
                #expect(r.status == 0, "\(r.stderr)")
                let token = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(token.count == 64)
                return token
            }
            let alice = try await add("alice"), bob = try await add("bob")
            let submitted = try await cluster.mgpu(["submit", "echo secret output; sleep 30"], env: ["MGPU_TOKEN": alice, "USER": "mallory"])
            let id = String(submitted.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let job = try await cluster.waitForState(try #require(JobID(id)), [.running])
            #expect(job.user == "alice", "the owner is the token's user, not what the client claims")

            let bobQueue = try await cluster.mgpu(["queue"], env: ["MGPU_TOKEN": bob])
            #expect(bobQueue.stdout.contains(id), "anyone authenticated sees the queue")
            let bobLogs = try await cluster.mgpu(["logs", id], env: ["MGPU_TOKEN": bob])
            #expect(bobLogs.status == 1 && bobLogs.stderr.contains("belongs to alice") && !bobLogs.stdout.contains("secret"))
            let bobCancel = try await cluster.mgpu(["cancel", id], env: ["MGPU_TOKEN": bob])
            #expect(bobCancel.status == 1 && bobCancel.stderr.contains("not yours to cancel"))
            let bobAdds = try await cluster.mgpu(["admin", "user", "add", "eve"], env: ["MGPU_TOKEN": bob])
            #expect(bobAdds.status == 1 && bobAdds.stderr.contains("only an admin"))
            #expect(try await cluster.job(try #require(JobID(id))).state == .running)

            let aliceLogs = try await cluster.mgpu(["logs", id], env: ["MGPU_TOKEN": alice])
            #expect(aliceLogs.stdout == "secret output\n")
            let adminCancel = try await cluster.mgpu(["cancel", id])  // the admin (this Unix user) may
            #expect(adminCancel.status == 0)
            try await cluster.waitForState(try #require(JobID(id)), [.cancelled])
            let users = try await cluster.mgpu(["admin", "user", "list"])
            #expect(users.stdout.contains("alice") && users.stdout.contains(unixUser))
        }

        @Test func upNeedsNoSetupForItsOwnUser() async throws {
            let cluster = try TestCluster()
            defer { cluster.stop() }
            // Default state dir ($XDG_STATE_HOME/mgpu) for both the master and the client: no token is configured.
            let env = ["XDG_STATE_HOME": cluster.dir + "/xdg", "HOME": cluster.dir, "MGPU_TOKEN": ""]
            var environment = ProcessInfo.processInfo.environment
            for (k, v) in env { environment[k] = v }
            let log = cluster.dir + "/up.out"
            cluster.masterPid = try Spawn.start([mgpuBinary, "up", "--port", "0", "--simulate-gpus", "1", "--node-id", "ws"],
                                                environment: environment.map { "\($0.key)=\($0.value)" },
                                                stdout: .path(log, flags: O_WRONLY | O_CREAT | O_TRUNC), stderr: .path(log + ".err", flags: O_WRONLY | O_CREAT | O_TRUNC))
            try await waitUntil("up listens", timeout: 20) {
                guard let text = cluster.read("up.out"), let r = text.range(of: "listening on http://127.0.0.1:") else { return false }
                cluster.port = Int(text[r.upperBound...].prefix { $0.isNumber }) ?? 0
                return cluster.port > 0
            }
            try await waitUntil("the local agent", timeout: 20) {
                let q = try await cluster.mgpu(["queue"], env: env)
                return q.stdout.contains("ws") && q.stdout.contains("UP")
            }
            let run = try await cluster.mgpu(["srun", "--", "echo", "zero setup"], env: env)
            #expect(run.status == 0 && run.stdout == "zero setup\n", "\(run.stderr)")
            #expect(cluster.read("up.out")?.contains("your token: \(cluster.dir)/xdg/mgpu/tokens/\(unixUser)") == true)
        }
    }
}

func lastMasterLog(_ cluster: TestCluster) throws -> String {
    let names = try FileManager.default.contentsOfDirectory(atPath: cluster.dir).filter { $0.hasPrefix("master.") && $0.hasSuffix(".err") }.sorted()
    return cluster.dir + "/" + (names.last ?? "none")
}
