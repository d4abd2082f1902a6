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
            // Accounts every Linux system has: under a root agent a job runs as its owner's Unix account.
            let alice = try await add("nobody"), bob = try await add("daemon")
            let submitted = try await cluster.mgpu(["submit", "echo secret output; sleep 30"], env: ["MGPU_TOKEN": alice, "USER": "mallory"])
            let id = String(submitted.stdout.split(separator: " ").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let job = try await cluster.waitForState(try #require(JobID(id)), [.running])
            #expect(job.user == "nobody", "the owner is the token's user, not what the client claims")

            let bobQueue = try await cluster.mgpu(["queue"], env: ["MGPU_TOKEN": bob])
            #expect(bobQueue.stdout.contains(id), "anyone authenticated sees the queue")
            let bobLogs = try await cluster.mgpu(["logs", id], env: ["MGPU_TOKEN": bob])
            #expect(bobLogs.status == 1 && bobLogs.stderr.contains("belongs to nobody") && !bobLogs.stdout.contains("secret"))
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
            #expect(users.stdout.contains("nobody") && users.stdout.contains(unixUser))
        }

        @Test(.enabled(if: geteuid() == 0, "an agent switches accounts only when it runs as root"))
        func rootAgentRunsEachJobAsItsOwner() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let added = try await cluster.mgpu(["admin", "user", "add", "nobody"])
            let nobody = added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let nobodyAccount = try #require(getpwnam("nobody")).pointee

            // The job runs as nobody: its user and group ids, its supplementary groups, HOME and USER.
            let id = try await cluster.submit(["--gpus", "0", "id -un; id -u; id -g; id -G; echo $USER $HOME; sleep 2"], env: ["MGPU_TOKEN": nobody])
            try await cluster.waitForState(id, [.running])

            // While it runs, its folder on the node and every file in it stay the agent's (root's), private: the job
            // writes its output through descriptors the supervisor opened. (The agent removes a job's folder once the
            // master has its end.)
            let jobDir = cluster.dir + "/node001/jobs/\(id)"
            var info = stat()
            try await waitUntil("the job's output", timeout: 10) { stat(jobDir + "/stdout", &info) == 0 && info.st_size > 0 }
            #expect(info.st_uid == 0 && info.st_mode & 0o777 == 0o600)
            #expect(stat(jobDir, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o777 == 0o700)
            #expect(stat(jobDir + "/work.json", &info) == 0 && info.st_uid == 0 && info.st_mode & 0o777 == 0o600, "the job's spec stays the agent's")

            let done = try await cluster.waitForState(id, [.completed, .failed])
            #expect(done.state == .completed, "\(done.reason ?? "")")
            let logs = try await cluster.mgpu(["logs", id.rawValue], env: ["MGPU_TOKEN": nobody])
            let lines = logs.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 5 && lines[0] == "nobody" && lines[1] == "\(nobodyAccount.pw_uid)" && lines[2] == "\(nobodyAccount.pw_gid)",
                    "\(logs.stdout)")
            #expect(lines.count == 5 && !lines[3].split(separator: " ").contains("0"), "no root group left: \(logs.stdout)")
            #expect(lines.count == 5 && lines[4] == "nobody \(String(cString: nobodyAccount.pw_dir))", "\(logs.stdout)")

            // A job of this Unix user (the admin) still runs as it.
            let mine = try await cluster.submit(["--gpus", "0", "id -un"])
            try await cluster.waitForState(mine, [.completed])
            #expect(try await cluster.mgpu(["logs", mine.rawValue]).stdout == "\(unixUser)\n")

            // An owner with no account on the node: refused, saying why, and nothing runs.
            let ghost = try await cluster.mgpu(["admin", "user", "add", "ghost-no-account"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let refused = try await cluster.submit(["--gpus", "0", "touch \(cluster.dir)/ran"], env: ["MGPU_TOKEN": ghost])
            let failed = try await cluster.waitForState(refused, [.failed, .completed])
            #expect(failed.state == .failed)
            #expect(failed.reason?.contains("no Unix account ghost-no-account on node node001") == true, "\(failed.reason ?? "")")
            #expect(!FileManager.default.fileExists(atPath: cluster.dir + "/ran"))
        }

        @Test func nodesEnrolOnceAndSpeakOnlyForThemselves() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1, "node002": 1])
            defer { cluster.stop() }
            let secret = try #require(cluster.read("state/cluster.secret")).trimmingCharacters(in: .whitespacesAndNewlines)
            let credential1 = try #require(cluster.read("node001/node.credential")).trimmingCharacters(in: .whitespacesAndNewlines)
            let credential2 = try #require(cluster.read("node002/node.credential")).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(credential1.count == 64 && credential1 != secret && credential1 != credential2)
            let attrs = try FileManager.default.attributesOfItem(atPath: cluster.dir + "/node001/node.credential")
            #expect((attrs[.posixPermissions] as? Int) == 0o600)

            // The cluster secret cannot take over an enrolled node id: refused, with a line on both sides.
            try cluster.startAgent("impostor", gpus: 4, extra: ["--node-id", "node001", "--state-dir", cluster.dir + "/impostor"])
            try await waitUntil("the master refuses the impostor", timeout: 15) {
                (try? String(contentsOfFile: try lastMasterLog(cluster), encoding: .utf8))?.contains("refused to enrol a node with the cluster secret") == true
            }
            try await waitUntil("the impostor says why", timeout: 10) { cluster.agentLog("impostor")?.contains("node node001 has enrolled already") == true }
            let nodes = try await cluster.client.queue().nodes
            #expect(nodes.first { $0.id == "node001" }?.gpus.count == 1, "node001 is still the real one")
            try await cluster.kill(agent: "impostor")

            // A job on node002; node001's credential speaks for node001 only.
            let id = try await cluster.submit(["--nodelist", "node002", "echo real; sleep 30"])
            try await cluster.waitForState(id, [.running])
            let node1 = HTTPClient(host: "127.0.0.1", port: cluster.port, token: credential1)
            let sync = try await node1.request(.POST, "/v1/agent/sync", body: Array(#"{"nodeId":"node002","incarnation":"x","running":[],"finished":[],"wait":0}"#.utf8))
            #expect(sync.status == 403 && String(decoding: sync.body, as: UTF8.self).contains("belongs to node node001"))
            let register = try await node1.request(.POST, "/v1/agent/register", body: Array(#"{"nodeId":"node002","incarnation":"x","gpus":[],"cpuSlots":1}"#.utf8))
            #expect(register.status == 403)
            let output = try await node1.request(.POST, "/v1/agent/output?node=node002&job=\(id)&rank=0&stream=stdout&offset=0",
                                                 body: Array("forged\n".utf8), contentType: "application/octet-stream")
            #expect(output.status == 404, "\(String(decoding: output.body, as: UTF8.self))")
            let stdin = try await node1.request(.GET, "/v1/agent/stdin?job=\(id)&offset=0&wait=0")
            #expect(stdin.status == 404)
            let bySecret = try await HTTPClient(host: "127.0.0.1", port: cluster.port, token: secret)
                .request(.POST, "/v1/agent/sync", body: Array(#"{"nodeId":"node002","incarnation":"x","running":[],"finished":[],"wait":0}"#.utf8))
            #expect(bySecret.status == 403 && String(decoding: bySecret.body, as: UTF8.self).contains("only enrols new nodes"))
            try await waitUntil("the job's real output", timeout: 10) { try await cluster.mgpu(["logs", id.rawValue]).stdout == "real\n" }

            // An admin removes node002: its job ends NODE_FAIL, and its agent (whose credential the master forgot)
            // enrols again with the cluster secret, with a new credential.
            let user = try await cluster.mgpu(["admin", "user", "add", "daemon"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let refused = try await cluster.mgpu(["admin", "node", "remove", "node002"], env: ["MGPU_TOKEN": user])
            #expect(refused.status == 1 && refused.stderr.contains("only an admin"), "\(refused.stderr)")
            let removed = try await cluster.mgpu(["admin", "node", "remove", "node002"])
            #expect(removed.status == 0, "\(removed.stderr)")
            let failed = try await cluster.waitForState(id, [.nodeFail, .failed, .completed])
            #expect(failed.state == .nodeFail && failed.reason?.contains("removed by \(unixUser)") == true, "\(failed.reason ?? "")")
            try await waitUntil("node002 enrolled again", timeout: 20) {
                let again = cluster.read("node002/node.credential")?.trimmingCharacters(in: .whitespacesAndNewlines)
                return again != nil && again != credential2
            }
            try await cluster.waitForNodes(["node001", "node002"])
            #expect(cluster.agentLog("node002")?.contains("does not know this node's credential") == true)
            let unknown = try await cluster.mgpu(["admin", "node", "remove", "node999"])
            #expect(unknown.status == 1 && unknown.stderr.contains("no node node999"))
        }

        @Test func tokensTravelOnlyInHeadersAndAnEmptySecretStopsTheMaster() async throws {
            let cluster = try await TestCluster.start(agents: [:])
            defer { cluster.stop() }
            let token = try #require(cluster.token)
            let anonymous = HTTPClient(host: "127.0.0.1", port: cluster.port)
            #expect(try await anonymous.request(.GET, "/v1/queue?token=\(token)").status == 401, "no token in an address")
            #expect(try await anonymous.request(.GET, "/v1/events?limit=1&token=\(token)").status == 401, "not even for the event stream")
            var bearer = HTTPClient(host: "127.0.0.1", port: cluster.port)
            bearer.token = token
            #expect(try await bearer.request(.GET, "/v1/events?limit=1").status == 200)
            var empty = HTTPClient(host: "127.0.0.1", port: cluster.port)
            empty.token = ""
            #expect(try await empty.request(.GET, "/v1/queue").status == 401, "an empty bearer matches nothing")
            #expect(try await empty.request(.POST, "/v1/agent/register", body: Array(#"{"nodeId":"n","incarnation":"i","gpus":[],"cpuSlots":1}"#.utf8)).status == 401)

            // A cluster.secret that is empty or only whitespace: the master refuses to start, saying why.
            try await cluster.killMaster()
            try " \n".write(toFile: cluster.secretFile, atomically: true, encoding: .utf8)
            let start = try await cluster.mgpu(["master", "--port", "0", "--state-dir", cluster.dir + "/state"])
            #expect(start.status != 0 && start.stderr.contains("holds no usable cluster secret"), "\(start.stderr)")
        }

        @Test func aJobNeverSeesItsOwnersTokens() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let token = try #require(cluster.token)
            // The token in MGPU_TOKEN, copied into another variable, and in a token file the CLI reads.
            let home = cluster.dir + "/home"
            try FileManager.default.createDirectory(atPath: home + "/.config/mgpu", withIntermediateDirectories: true)
            try (token + "\n").write(toFile: home + "/.config/mgpu/token", atomically: true, encoding: .utf8)
            let id = try await cluster.submit(["--gpus", "0", "env"], env: ["COPY_OF_TOKEN": "Bearer \(token)", "HOME": home, "KEEP_ME": "yes"])
            try await cluster.waitForState(id, [.completed])
            let env = try await cluster.mgpu(["logs", id.rawValue]).stdout
            #expect(env.contains("KEEP_ME=yes"), "the rest of the environment travels")
            #expect(!env.contains(token) && !env.contains("MGPU_TOKEN="), "a token reached the node:\n\(env)")
            // Straight to the API, with MGPU_TOKEN in the job's environment: the master drops it too.
            let spec = JobSpec(name: "api", user: "x", command: "env", workdir: "/tmp",
                               environment: ["MGPU_TOKEN": token, "ALSO": token, "FINE": "1"], request: ResourceRequest(gpusPerNode: 0))
            let viaAPI = try #require(try await cluster.client.submit([spec]).first)
            try await cluster.waitForState(viaAPI, [.completed])
            let apiEnv = try await cluster.mgpu(["logs", viaAPI.rawValue]).stdout
            #expect(apiEnv.contains("FINE=1") && !apiEnv.contains(token), "\(apiEnv)")
        }

        @Test func helpIsHelpAndNotAJob() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            for args in [["submit", "--help"], ["submit", "-h"], ["srun", "--help"], ["submit", "--gpus", "1", "--help"], ["srun", "-h"]] {
                let r = try await cluster.mgpu(args)
                #expect(r.status == 0 && r.stdout.contains("USAGE:"), "\(args): \(r.stdout.prefix(200)) \(r.stderr)")
            }
            let typo = try await cluster.mgpu(["submit", "--gpu", "2", "python", "train.py"])
            #expect(typo.status == 2 && typo.stderr.contains("unknown option --gpu"), "\(typo.stderr)")
            #expect(try await cluster.client.queue().jobs.isEmpty, "none of these submitted a job")
            let quoted = try await cluster.submit(["--", "echo", "--help"])
            try await cluster.waitForState(quoted, [.completed])
            #expect(try await cluster.mgpu(["logs", quoted.rawValue]).stdout == "--help\n", "words after -- are the job's")
        }

        @Test func otherUsersNamesAndCommandsCannotDriveYourTerminal() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let evil = "\u{1B}]0;pwned\u{07}\u{1B}[2J\rfake\u{202E}"
            _ = try await cluster.submit(["--gpus", "0", "--name", evil, "sleep 5; echo \(evil)"])
            for command in [["queue"], ["nodes", "--verbose"], ["admin", "user", "list"]] {
                let out = try await cluster.mgpu(command)
                #expect(out.status == 0, "\(command): \(out.stderr)")
                #expect(!out.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x0D || $0.value == 0x202E },
                        "\(command) printed control characters: \(out.stdout.debugDescription)")
            }
            #expect(try await cluster.mgpu(["queue"]).stdout.contains("\\x1b]0;pwned"), "shown escaped")
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

extension EndToEndTests.AuthTests {
    /// An agent of another protocol gets one line saying which side to upgrade, before the rest of its message is read;
    /// an agent of the previous release (no version in its messages) is still served, so a master can go first.
    @Test func agentsOfAnotherProtocolAreToldWhichToUpgrade() async throws {
        let cluster = try await TestCluster.start(agents: [:])
        defer { cluster.stop() }
        var agent = HTTPClient(host: "127.0.0.1", port: cluster.port)
        agent.token = try #require(cluster.read("state/cluster.secret")?.trimmingCharacters(in: .whitespacesAndNewlines))
        func register(_ body: String) async throws -> (Int, String) {
            let answer = try await agent.request(.POST, "/v1/agent/register", body: Array(body.utf8))
            return (answer.status, String(decoding: answer.body, as: UTF8.self))
        }
        let newer = try await register(#"{"protocolVersion":99,"mgpuVersion":"9.0.0","nodeId":"n1","incarnation":"i","gpus":[],"cpuSlots":1}"#)
        #expect(newer.0 == 409 && newer.1.contains("mgpu 9.0.0, protocol 99") && newer.1.contains("upgrade the master first"), "\(newer)")
        // The release an agent names is repeated short and printable only.
        let noisy = try await register(#"{"protocolVersion":99,"mgpuVersion":"9\u001b[2J\u001b]0;pwned\u0007\#(String(repeating: "9", count: 500))","nodeId":"n1"}"#)
        #expect(noisy.0 == 409 && !noisy.1.contains("\\u001b") && !noisy.1.contains("pwned\\u0007") && noisy.1.count < 400, "\(noisy)")
        // A message that would not decode at all still gets the version line.
        let older = try await register(#"{"protocolVersion":0,"node":"n1","shape":"of another age"}"#)
        #expect(older.0 == 409 && older.1.contains("too old") && older.1.contains("upgrade mgpu on this node"), "\(older)")
        // mgpu 0.1's agents send no version: served (protocol 1 is accepted), and answered with the master's.
        let previous = try await register(#"{"nodeId":"n1","incarnation":"i","gpus":[{"index":0,"uuid":"GPU-old","name":"Old GPU","memoryMB":1000,"simulated":true}],"cpuSlots":1}"#)
        #expect(previous.0 == 200, "\(previous)")
        let answer = try JSONDecoder().decode(RegisterResponse.self, from: Data(previous.1.utf8))
        #expect(answer.protocolVersion == AgentProtocol.current && answer.mgpuVersion == mgpuVersion)
        // Its syncs send telemetry with GPUs as objects (protocol 1-2; this build's agents send rows): read as before.
        var old = HTTPClient(host: "127.0.0.1", port: cluster.port)
        old.token = try #require(answer.credential)
        let sync = try await old.request(.POST, "/v1/agent/sync", body: Array(#"{"nodeId":"n1","incarnation":"i","running":[],"finished":[],"wait":0,"telemetry":{"time":1,"avoidForeign":true,"gpus":[{"index":0,"utilization":37.5,"memoryUsedMB":10,"memoryTotalMB":1000,"processes":[{"pid":7,"user":"ann","memoryMB":10}],"inUseOutside":true}]}}"#.utf8))
        #expect(sync.status == 200, "\(String(decoding: sync.body, as: UTF8.self))")
        let nodes = String(decoding: try await cluster.client.http.request(.GET, "/v1/nodes").body, as: UTF8.self)
        #expect(nodes.contains(#""utilization":37.5"#) && nodes.contains(#""user":"ann""#) && nodes.contains(#""inUseOutside":true"#), "\(nodes)")
        // A real agent of this build is served, and the refusal is logged as one line naming the peer.
        try cluster.startAgent("node001", gpus: 1)
        try await cluster.waitForNodes(["node001"])
        let version = try await cluster.mgpu(["--version"])
        #expect(version.stdout.hasPrefix("mgpu \(mgpuVersion) (commit "), "\(version.stdout)")
    }
}
