import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

extension EndToEndTests {
@Suite struct FailureTests {
    @Test func masterKilledAndRestartedLosesNothing() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let running = try await cluster.submit(["echo before; sleep 3; echo after; exit 3"])
        let pending = [try await cluster.submit(["echo second"]), try await cluster.submit(["echo third"])]
        try await cluster.waitForState(running, [.running])
        try await waitUntil("output before the crash", timeout: 10) {
            (try? await cluster.mgpu(["logs", running.rawValue]).stdout) == "before\n"
        }
        try await cluster.killMaster()
        try await Task.sleep(for: .milliseconds(500))
        try await cluster.startMaster()
        for id in pending { #expect(try await cluster.job(id).state == .pending, "still pending after the restart") }
        let ended = try await cluster.waitForState(running, [.failed, .completed], timeout: 30)
        #expect(ended.state == .failed)
        #expect(ended.exit?.code == 3, "the real exit code arrives after the restart")
        #expect(try await cluster.mgpu(["logs", running.rawValue]).stdout == "before\nafter\n")
        for id in pending { try await cluster.waitForState(id, [.completed]) }
        #expect(try await cluster.mgpu(["logs", pending[1].rawValue]).stdout == "third\n")
        // The agent said so once per attempt while the master was away, and registered again after.
        let agentLog = try #require(cluster.agentLog("node001"))
        // One line per event: a UTC timestamp to the millisecond, the level, the message, its fields.
        let line = try #require(agentLog.split(separator: "\n").first { $0.contains("registered with") })
        #expect(line.wholeMatch(of: /20\d\d-(0[1-9]|1[0-2])-[0-3]\d(T[0-2]\d:[0-5]\d:[0-5]\d\.\d{3}Z) info    node001 registered with .*/) != nil,
                "\(line)")
        #expect(agentLog.contains("master 127.0.0.1:\(cluster.port) unreachable (attempt 1)"))
        #expect(agentLog.contains("jobs keep running"))
        #expect(agentLog.components(separatedBy: "node001 registered with 127.0.0.1:\(cluster.port): 1 GPU").count == 3,
                "registered at start and again after the restart")
    }

    /// A killed agent: DOWN after the timeout (its job keeps its GPU), then its job ends NODE_FAIL. Back again, the
    /// agent re-adopts the job's process, which the master has ended: it is stopped before the GPU is used again.
    /// Each job logs its start and its end (on SIGTERM too): the log shows any overlap on the one GPU.
    @Test func killedAgentGoesDownThenItsJobFailsAndItsGPUIsFreedWhenItReturns() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1], master: ["--node-timeout", "1", "--node-lost-after", "3"])
        defer { cluster.stop() }
        let marker = "6\(Int.random(in: 100_000...999_999))"
        func job(_ name: String, seconds: String) -> String {
            #"echo \#(name) start >> gpu.log; trap 'echo \#(name) end >> gpu.log; exit 143' TERM; sleep \#(seconds) & wait; echo \#(name) end >> gpu.log"#
        }
        let id = try await cluster.submit([job("a", seconds: "60.\(marker)")])
        try await cluster.waitForState(id, [.running])
        try await waitUntil("the job process", timeout: 10) { !processes(containing: "sleep 60.\(marker)").isEmpty }
        try await cluster.kill(agent: "node001")
        let killedAt = Date()
        try await cluster.waitForNodes(["node001"], up: false)
        #expect(Date().timeIntervalSince(killedAt) < 4, "DOWN within the node timeout")
        let silent = try await cluster.job(id)
        #expect(silent.state == .running)
        #expect(silent.note?.contains("node not responding") == true)
        let queued = try await cluster.submit([job("b", seconds: "0.1")])
        let failed = try await cluster.waitForState(id, [.nodeFail], timeout: 15)
        #expect(failed.reason?.contains("node001") == true)
        #expect(try await cluster.job(queued).state == .pending, "no work goes to a DOWN node")
        // The agent comes back: it still has the job, which the master ended, so it is stopped and the GPU freed.
        try cluster.startAgent("node001", gpus: 1)
        try await cluster.waitForState(queued, [.completed], timeout: 20)
        #expect(processes(containing: "sleep 60.\(marker)").isEmpty, "the lost job was stopped")
        #expect(cluster.read("work/gpu.log") == "a start\na end\nb start\nb end\n", "never two jobs on the GPU")
    }

    /// A requeued two-node job placed again on a node that ran one of its parts starts there again (the agent tells
    /// the attempts apart) and completes.
    @Test func requeuedGangJobStartsAgainOnANodeThatRanItBefore() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1, "node002": 1, "node003": 1],
                                                  master: ["--node-timeout", "1", "--node-lost-after", "3"])
        defer { cluster.stop() }
        // node003 is busy at first, so the job's first attempt runs on node001 and node002.
        let holder = try await cluster.submit(["--nodelist", "node003", "sleep 3"])
        try await cluster.waitForState(holder, [.running])
        let id = try await cluster.submit(["--requeue", "--nodes", "2", "--gpus-per-node", "1",
                                           #"echo "$MGPU_NODE_ID" >> ran.txt; [ "$(wc -l < ran.txt)" -gt 2 ] || sleep 60"#])
        let first = try await cluster.waitForState(id, [.running])
        #expect(first.placementText == "node001:gpu0, node002:gpu0", "\(first.placementText)")
        try await waitUntil("both parts run", timeout: 10) { cluster.read("work/ran.txt")?.split(separator: "\n").count == 2 }
        try await cluster.kill(agent: "node002")
        let done = try await cluster.waitForState(id, [.completed, .nodeFail, .failed], timeout: 40)
        #expect(done.state == .completed, "\(done.state) \(done.reason ?? "")")
        #expect(done.requeues == 1)
        #expect(done.placementText == "node001:gpu0, node003:gpu0", "\(done.placementText)")
        let ran = (cluster.read("work/ran.txt") ?? "").split(separator: "\n").map(String.init)
        #expect(ran.count == 4 && ran.filter { $0 == "node001" }.count == 2, "node001 ran both attempts: \(ran)")
        #expect(try await cluster.mgpu(["queue"]).stdout.contains("requeued 1×"))
        // Pinned GPUs cannot move, so they cannot be requeued.
        let pinned = try await cluster.mgpu(["submit", "--requeue", "--node-gpu-ids", "node002:0", "true"])
        #expect(pinned.status == 1 && pinned.stderr.contains("pinned GPUs cannot move"), "\(pinned.stderr)")
    }

    /// SIGTERM: the master stops accepting, finishes, closes the store (SQLite folds its WAL back: no -wal file
    /// left) and exits 0; what it accepted is there after a restart.
    @Test func masterShutsDownCleanlyOnSIGTERM() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let ids = [try await cluster.submit(["true"]), try await cluster.submit(["--gpus", "0", "sleep 0.2"])]
        for id in ids { try await cluster.waitForState(id, [.completed]) }
        let pending = try await cluster.submit(["--gpus", "1", "--nodelist", "node001", "sleep 30"])
        let wal = cluster.dir + "/state/mgpu.sqlite-wal"
        #expect(FileManager.default.fileExists(atPath: wal), "WAL in use while it runs")
        Glibc.kill(cluster.masterPid, SIGTERM)
        let status = try await waitForExit(cluster.masterPid, timeout: 20)
        #expect(status == 0, "exit status \(status)")
        #expect(!FileManager.default.fileExists(atPath: wal), "the store was closed")
        let refused = try? await cluster.client.queue()
        #expect(refused == nil, "nothing listens any more")
        try await cluster.startMaster()
        for id in ids { #expect(try await cluster.job(id).state == .completed) }
        #expect([.pending, .running].contains(try await cluster.job(pending).state), "the accepted job is still there")
        _ = try await cluster.mgpu(["cancel", pending.rawValue])
    }

    /// 20 clients submit 2,000 jobs as fast as they can; the master is SIGKILLed in the middle. After a restart
    /// every job whose submit was acknowledged is there exactly once, still PENDING, and nothing else is.
    @Test func acknowledgedSubmitsSurviveSIGKILLUnderLoad() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let holder = try await cluster.submit(["sleep 120"])
        try await cluster.waitForState(holder, [.running])
        let client = cluster.client
        let spec = JobSpec(name: nil, user: "x", command: "true", workdir: "/tmp", environment: [:], request: ResourceRequest(gpusPerNode: 1))
        let masterPid = cluster.masterPid
        let killer = Task {
            try await Task.sleep(for: .milliseconds(700))
            Glibc.kill(masterPid, SIGKILL)
        }
        let acknowledged = await withTaskGroup(of: [JobID].self) { group in
            for _ in 0..<20 {
                group.addTask {
                    var ids: [JobID] = []
                    for _ in 0..<100 {
                        guard let id = try? await client.submit([spec]) else { break }
                        ids += id
                    }
                    return ids
                }
            }
            return await group.reduce(into: [JobID]()) { $0 += $1 }
        }
        try await killer.value
        _ = try await waitForExit(masterPid, timeout: 10)
        #expect(acknowledged.count > 20, "the clients got going before the kill (\(acknowledged.count))")
        #expect(acknowledged.count < 2000, "the kill came in the middle (\(acknowledged.count))")
        try await cluster.startMaster()
        let jobs = try await client.queue().jobs.filter { $0.id != holder }
        let ids = jobs.map(\.id)
        #expect(Set(ids).count == ids.count, "no job twice")
        #expect(Set(acknowledged).isSubset(of: Set(ids)), "\(Set(acknowledged).subtracting(ids).count) acknowledged jobs lost")
        #expect(ids.count - acknowledged.count <= 20, "at most one unacknowledged commit per client")
        #expect(jobs.allSatisfy { $0.state == .pending })
        _ = try await cluster.mgpu(["cancel", holder.rawValue])
    }

    @Test func agentRestartedInTimeFindsItsJobStillRunning() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1], master: ["--node-timeout", "1", "--node-lost-after", "60"])
        defer { cluster.stop() }
        let id = try await cluster.submit(["echo start; sleep 3; echo end; exit 4"])
        try await cluster.waitForState(id, [.running])
        try await waitUntil("the job's first line", timeout: 10) { try await cluster.mgpu(["logs", id.rawValue]).stdout == "start\n" }
        try await cluster.kill(agent: "node001")
        try await cluster.waitForNodes(["node001"], up: false)
        try cluster.startAgent("node001", gpus: 1)
        try await cluster.waitForNodes(["node001"])
        #expect(try await cluster.job(id).state == .running, "still RUNNING after the agent came back")
        let ended = try await cluster.waitForState(id, [.failed, .completed, .nodeFail], timeout: 20)
        #expect(ended.state == .failed)
        #expect(ended.exit?.code == 4, "the re-adopted job reports its real exit code")
        #expect(try await cluster.mgpu(["logs", id.rawValue]).stdout == "start\nend\n")
    }

    @Test func badRequestsGetClearErrors() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 2])
        defer { cluster.stop() }
        func refused(_ args: [String], status: Int32, says text: String) async throws {
            let r = try await cluster.mgpu(args)
            #expect(r.status == status, "\(args): exit \(r.status)")
            #expect(r.stderr.contains(text), "\(args): \(r.stderr)")
            #expect(!r.stderr.contains("Backtrac") && !r.stderr.contains("Fatal"), "no stack trace: \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count <= 4, "short: \(r.stderr)")
        }
        try await refused(["submit", "--gpus", "3", "true"], status: 1, says: "no node has 3 GPUs")
        try await refused(["submit", "--node-gpu-ids", "node009:0", "true"], status: 1, says: "unknown node node009")
        try await refused(["submit", "--node-gpu-ids", "node001:7", "true"], status: 1, says: "node node001 has no GPU 7")
        try await refused(["submit", "--node-gpu-ids", "node001:x", "true"], status: 2, says: "is not a non-negative number")
        try await refused(["submit", ""], status: 2, says: "give a command")
        try await refused(["submit", " \n\t "], status: 2, says: "give a command")
        try await refused(["cancel", "DEADBEEF"], status: 1, says: "no such job: DEADBEEF")
        try await refused(["logs", "DEADBEEF"], status: 1, says: "no job DEADBEEF")
        try await refused(["logs", "../../etc"], status: 2, says: "job id must be 8 hex digits")
        try await refused(["cancel", "12345678", "x/y"], status: 2, says: "job id must be 8 hex digits")
        try await refused(["queue", "--port", "1"], status: 2, says: "cannot reach the mgpu master at 127.0.0.1:1")
        try await refused(["frobnicate"], status: 2, says: "Unexpected argument")

        // Raw HTTP: malformed bodies are 400s with a JSON message; nothing is accepted.
        let http = cluster.client.http
        let agentHTTP = HTTPClient(host: "127.0.0.1", port: cluster.port, token: cluster.read("state/cluster.secret")?
            .trimmingCharacters(in: .whitespacesAndNewlines))
        for (path, body) in [("/v1/jobs", "{"), ("/v1/jobs", #"{"jobs": "no"}"#), ("/v1/agent/sync", #"{"nodeId": 1}"#),
                             ("/v1/jobs/cancel", #"{"ids": []}"#),
                             ("/v1/jobs", #"{"jobs": [], "commands": ["true"]}"#)] {
            let r = try await (path.hasPrefix("/v1/agent/") ? agentHTTP : http).request(.POST, path, body: Array(body.utf8))
            #expect(r.status == 400, "\(path) \(body) -> \(r.status)")
            #expect((try? JSONDecoder().decode(ErrorBody.self, from: Data(r.body)))?.error.message.isEmpty == false)
        }
        // Absurd values, ids with `/` or `..`, an unknown API version, an oversize body: 4xx with a JSON message.
        let spec = #"{"user":"x","command":"true","workdir":"/tmp","environment":{},"request":REQ}"#
        for (path, body, status) in [
            ("/v1/jobs", #"{"jobs":[\#(spec.replacingOccurrences(of: "REQ", with: #"{"gpusPerNode":-1}"#))]}"#, 400),
            ("/v1/jobs", #"{"jobs":[\#(spec.replacingOccurrences(of: "REQ", with: #"{"nodes":1000000000}"#))]}"#, 400),
            ("/v1/jobs", #"{"jobs":[\#(spec.replacingOccurrences(of: "REQ", with: #"{"nodelist":["../node001"]}"#))]}"#, 400),
            ("/v1/jobs", #"{"jobs":[\#(spec.replacingOccurrences(of: "REQ", with: "{}").replacingOccurrences(of: "/tmp", with: "tmp"))]}"#, 400),
            ("/v1/agent/register", #"{"nodeId":"../x","incarnation":"i","gpus":[],"cpuSlots":1}"#, 400),
            ("/v2/jobs", "{}", 404),
            ("/v1/jobs", "[" + String(repeating: "1,", count: 9_000_000) + "1]", 413),
        ] {
            let r = try await (path.hasPrefix("/v1/agent/") ? agentHTTP : http).request(.POST, path, body: Array(body.utf8))
            #expect(r.status == status, "\(path) \(body.prefix(120)) -> \(r.status)")
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(r.body)))?.error.message
            #expect(message?.isEmpty == false, "\(path) -> \(String(decoding: r.body.prefix(200), as: UTF8.self))")
        }
        #expect(try await http.request(.GET, "/v1/jobs/nothex12").status == 400)
        #expect(try await http.request(.GET, "/v1/queue?format=yaml").status == 400)
        #expect(try await http.request(.GET, "/v1/jobs/0000ABCD").status == 404)
        #expect(try await http.request(.GET, "/v1/health").status == 200, "the master keeps serving")
        #expect(try await cluster.client.queue().jobs.isEmpty, "no refused request created a job")
    }

    @Test func upRunsMasterAndAgentInOneProcess() async throws {
        let cluster = try TestCluster()
        defer { cluster.stop() }
        let log = cluster.dir + "/up.out"
        cluster.masterPid = try Spawn.start([mgpuBinary, "up", "--port", "0", "--simulate-gpus", "2", "--node-id", "ws1",
                                             "--state-dir", cluster.dir + "/state"],
                                            stdout: .path(log, flags: O_WRONLY | O_CREAT | O_TRUNC), stderr: .path(log + ".err", flags: O_WRONLY | O_CREAT | O_TRUNC))
        try await waitUntil("up listens", timeout: 20) {
            guard let text = cluster.read("up.out"), let r = text.range(of: "listening on http://127.0.0.1:") else { return false }
            cluster.port = Int(text[r.upperBound...].prefix { $0.isNumber }) ?? 0
            return cluster.port > 0
        }
        try await cluster.waitForNodes(["ws1"])
        let id = try await cluster.submit(["--gpus", "2", "echo $CUDA_VISIBLE_DEVICES"])
        try await cluster.waitForState(id, [.completed])
        #expect(try await cluster.mgpu(["logs", id.rawValue]).stdout == "0,1\n")
        let queue = try await cluster.mgpu(["queue"])
        #expect(queue.stdout.contains("ws1") && queue.stdout.contains("2 (simulated)"))
        #expect(cluster.read("up.out")?.contains("state: \(cluster.dir)/state/mgpu.sqlite") == true)
        // SIGTERM stops it cleanly.
        kill(cluster.masterPid, SIGTERM)
        #expect(try await waitForExit(cluster.masterPid, timeout: 15) == 0)
    }

    @Test func agentUsesNvidiaSMI() async throws {
        let cluster = try TestCluster()
        defer { cluster.stop() }
        let fake = cluster.dir + "/nvidia-smi"
        let recorded = """
            0, GPU-1f0e2c44-6b43-8e7a-0d3e-5b1b6a9c2e01, NVIDIA A100-SXM4-80GB, 81920
            1, GPU-2a1b3c55-7c54-9f8b-1e4f-6c2c7bad3f12, NVIDIA A100-SXM4-80GB, 81920

            """
        try "#!/bin/sh\ncat <<'EOF'\n\(recorded)EOF\n".write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        try await cluster.startMaster()
        try cluster.startAgent("gpubox", gpus: nil, extra: ["--nvidia-smi", fake])
        try await cluster.waitForNodes(["gpubox"])
        let node = try #require(try await cluster.client.queue().nodes.first)
        #expect(node.gpus.map(\.name) == ["NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"])
        #expect(!node.simulated)
        let id = try await cluster.submit(["--gpus", "2", "echo $CUDA_VISIBLE_DEVICES"])
        try await cluster.waitForState(id, [.completed])
        #expect(try await cluster.mgpu(["logs", id.rawValue]).stdout == "0,1\n")
    }
}
}
