import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

/// Three agents with distinct node ids on this machine, one simulated GPU each.
extension EndToEndTests {
@Suite struct MultiNodeTests {
    static let three = ["node001": 1, "node002": 1, "node003": 1]

    @Test func twoNodeJobsOnThreeNodesRunOneAfterTheOtherWithoutHoldingGPUs() async throws {
        let cluster = try await TestCluster.start(agents: Self.three)
        defer { cluster.stop() }
        let script = #"date +%s.%N > "start.$MGPU_JOB_ID.$NODE_RANK"; sleep 1; date +%s.%N > "end.$MGPU_JOB_ID.$NODE_RANK""#
        let first = try await cluster.submit(["--nodes", "2", "--gpus-per-node", "1", "--distributed", script])
        let second = try await cluster.submit(["--nodes", "2", "--gpus-per-node", "1", "--distributed", script])
        let running = try await cluster.waitForState(first, [.running])
        let waiting = try await cluster.job(second)
        #expect(waiting.state == .pending)
        #expect(waiting.parts.isEmpty, "a waiting gang job holds no node")
        let idle = try #require(Set(Self.three.keys).subtracting(running.parts.map(\.nodeId)).first)
        #expect(try await cluster.client.queue().nodes.first { $0.id == idle }?.busyGPUs == [], "the third node's GPU is not held")
        let ended = [try await cluster.waitForState(first, [.completed]), try await cluster.waitForState(second, [.completed])]
        #expect(Set(ended[0].parts.map(\.nodeId)).count == 2)
        func time(_ name: String) throws -> Double {
            try #require(Double(cluster.read("work/\(name)")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""), "\(name)")
        }
        let firstEnd = max(try time("end.\(first).0"), try time("end.\(first).1"))
        let secondStart = min(try time("start.\(second).0"), try time("start.\(second).1"))
        #expect(secondStart >= firstEnd, "the second gang job started only after the first ended")
        #expect(abs(try time("start.\(first).0") - time("start.\(first).1")) < 1, "both parts of a gang job start together")
    }

    @Test func distributedJobsSeeTheRendezvousEnvironment() async throws {
        let cluster = try await TestCluster.start(agents: Self.three)
        defer { cluster.stop() }
        let script = #"echo "$MASTER_ADDR|$MASTER_PORT|$NNODES|$NODE_RANK|$NPROC_PER_NODE|$WORLD_SIZE|$MGPU_NODELIST|$MGPU_NODE_ID" > "env.$NODE_RANK"; "#
            + #"if [ "$NODE_RANK" = 0 ]; then python3 -c "import socket,os; s=socket.socket(); s.bind(('', int(os.environ['MASTER_PORT']))); print('bound')"; fi; echo "rank $NODE_RANK done""#
        let run = try await cluster.mgpu(["srun", "--nodes", "3", "--gpus-per-node", "1", "--distributed", "--", "sh", "-c", script])
        #expect(run.status == 0, "srun exit \(run.status): \(run.stderr)")
        let lines = Set(run.stdout.split(separator: "\n").map(String.init))
        #expect(lines == ["0: bound", "0: rank 0 done", "1: rank 1 done", "2: rank 2 done"], "labelled output: \(run.stdout)")
        var ports = Set<String>(), nodes: [String] = []
        for rank in 0..<3 {
            let f = try #require(cluster.read("work/env.\(rank)")).trimmingCharacters(in: .newlines).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            #expect(f[0] == "127.0.0.1", "MASTER_ADDR is the address rank 0's agent registered from")
            ports.insert(f[1])
            #expect(f[2] == "3" && f[3] == "\(rank)" && f[4] == "1" && f[5] == "3")
            nodes.append(f[7])
            #expect(f[6].split(separator: ",").count == 3)
            #expect(f[6].split(separator: ",")[rank] == f[7], "MGPU_NODELIST is in rank order")
        }
        #expect(ports.count == 1 && Int(ports.first!) ?? 0 > 1024, "one MASTER_PORT for all ranks")
        #expect(Set(nodes).count == 3, "three distinct nodes")
    }

    @Test func oneFailingRankTerminatesTheOthers() async throws {
        let cluster = try await TestCluster.start(agents: Self.three)
        defer { cluster.stop() }
        let marker = "5\(Int.random(in: 100_000...999_999))"
        let run = try await cluster.mgpu(["srun", "--nodes", "3", "--gpus-per-node", "1", "--kill-grace", "3", "--",
                                          "sh", "-c", "if [ $MGPU_NODE_RANK = 1 ]; then sleep 1; exit 5; fi; sleep \(marker)"])
        #expect(run.status == 5, "srun returns the failing rank's exit code: \(run.status) \(run.stderr)")
        #expect(run.stderr.contains("FAILED: rank 1 on node00"))
        #expect(run.stderr.contains(": exit code 5"))
        #expect(processes(containing: "sleep \(marker)").isEmpty, "the other ranks were terminated")
        let job = try #require(try await cluster.client.queue().jobs.first)
        #expect(job.state == .failed)
        #expect(job.exit?.code == 5)
    }

    @Test func cancelReachesEveryNodeAndCtrlCCancels() async throws {
        let cluster = try await TestCluster.start(agents: Self.three)
        defer { cluster.stop() }
        let marker = "4\(Int.random(in: 100_000...999_999))"
        let id = try await cluster.submit(["--nodes", "3", "--gpus-per-node", "1", "--distributed", "sleep \(marker)"])
        try await cluster.waitForState(id, [.running])
        try await waitUntil("three parts running", timeout: 10) { processes(containing: "sleep \(marker)").count >= 6 }
        let queue = try await cluster.mgpu(["queue"])
        #expect(queue.stdout.contains("node001:gpu0, node002:gpu0, node003:gpu0 (distributed)"), "\(queue.stdout)")
        _ = try await cluster.mgpu(["cancel", id.rawValue])
        try await cluster.waitForState(id, [.cancelled])
        #expect(processes(containing: "sleep \(marker)").isEmpty, "cancel reached all three nodes")

        // Ctrl-C on srun cancels its job.
        let srun = try cluster.startCLI(["srun", "--nodes", "2", "--gpus-per-node", "1", "--", "sleep", marker])
        try await waitUntil("srun's job to run", timeout: 10) { processes(containing: "sleep \(marker)").count >= 4 }
        kill(srun.pid, SIGINT)
        #expect(try await waitForExit(srun.pid, timeout: 20) == 250, "250: cancelled")
        #expect(processes(containing: "sleep \(marker)").isEmpty)
        #expect(cluster.read(srun.out + ".err")?.contains("cancelling job") == true)
    }

    @Test func impossibleRequestsAreRefusedAtSubmit() async throws {
        let cluster = try await TestCluster.start(agents: Self.three)
        defer { cluster.stop() }
        for (args, text) in [(["--nodes", "4"], "the job asks for 4 nodes but the cluster has 3"),
                             (["--nodes", "2", "--gpus-per-node", "2"], "only 0 node(s) have that many"),
                             (["--nodelist", "node001,node009"], "unknown node node009"),
                             (["--gpu-ids", "1"], "no node has GPUs 1"),
                             (["--gpus", "3", "--nodes", "2"], "cannot be split evenly")] {
            let r = try await cluster.mgpu(["submit"] + args + ["true"])
            #expect(r.status != 0)
            #expect(r.stderr.contains(text), "\(args): \(r.stderr)")
        }
        let pinned = try await cluster.mgpu(["srun", "--nodelist", "node003", "--gpu-ids", "0", "--", "sh", "-c", "echo $MGPU_NODE_ID:$CUDA_VISIBLE_DEVICES"])
        #expect(pinned.stdout == "node003:0\n")
        #expect(try await cluster.client.queue().jobs.count == 1, "refused requests left nothing behind")
    }

    /// Starts `mgpu relay` to the cluster's master on a free port; returns it once it listens, with its port.
    static func startRelay(_ cluster: TestCluster, _ extra: [String]) async throws -> (pid: pid_t, out: String, port: Int) {
        let relay = try cluster.startCLI(["relay", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:\(cluster.port)"] + extra)
        var port = 0
        try await waitUntil("the relay listens", timeout: 10) {
            let text = cluster.read(relay.out) ?? ""
            guard let r = text.range(of: "listening on 127.0.0.1:") else { return false }
            port = Int(text[r.upperBound...].prefix { $0.isNumber }) ?? 0
            return port > 0
        }
        return (relay.pid, relay.out, port)
    }

    @Test func agentReachesTheMasterOnlyThroughARelay() async throws {
        let cluster = try TestCluster()
        defer { cluster.stop() }
        try await cluster.startMaster()
        let (_, relayOut, relayPort) = try await Self.startRelay(cluster, ["--verbose", "--idle-timeout", "30"])
        try cluster.startAgent("behindrelay", gpus: 1, masterPort: relayPort)
        try await cluster.waitForNodes(["behindrelay"])
        let id = try await cluster.submit(["echo through the relay"])
        try await cluster.waitForState(id, [.completed])
        #expect(try await cluster.mgpu(["logs", id.rawValue]).stdout == "through the relay\n")
        #expect(cluster.agentLog("behindrelay")?.contains("registered with 127.0.0.1:\(relayPort)") == true)
        #expect(cluster.read(relayOut + ".err")?.contains("relay: connection from") == true,
                "one log line per connection with --verbose")

        // An idle connection through the relay is closed after --idle-timeout (both sides).
        let (_, _, quietPort) = try await Self.startRelay(cluster, ["--idle-timeout", "1"])
        let fd = try #require(connectLoopback(quietPort))
        defer { close(fd) }
        var byte: UInt8 = 0
        let start = Date()
        #expect(read(fd, &byte, 1) == 0, "closed by the relay")
        let waited = Date().timeIntervalSince(start)
        #expect(waited > 0.5 && waited < 5, "after about 1 s (\(waited) s)")
    }

    @Test func agentInsideSlurmOffersItsGPUsAndDrainsOnSIGTERM() async throws {
        let cluster = try TestCluster()
        defer { cluster.stop() }
        try await cluster.startMaster()
        try cluster.startAgent("slurmnode", gpus: 8, env: ["SLURM_JOB_ID": "4242", "CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_GPUS": "4,5"])
        try await cluster.waitForNodes(["slurmnode"])
        let node = try #require(try await cluster.client.queue().nodes.first)
        #expect(node.gpus.map(\.index) == [0, 1], "only the GPUs Slurm gave")
        #expect(node.gpus.map(\.physicalIndex) == [4, 5])
        let marker = "3\(Int.random(in: 100_000...999_999))"
        let id = try await cluster.submit(["--kill-grace", "60", "--gpus", "2", "echo $CUDA_VISIBLE_DEVICES; sleep \(marker)"])
        try await cluster.waitForState(id, [.running])
        try await waitUntil("the job runs", timeout: 10) { !processes(containing: "sleep \(marker)").isEmpty }
        let start = Date()
        try await cluster.kill(agent: "slurmnode", signal: SIGTERM)
        #expect(try await waitForExit(cluster.agentPids["slurmnode"]!, timeout: 30) == 0)
        #expect(Date().timeIntervalSince(start) < 30, "within Slurm's default kill wait")
        let ended = try await cluster.job(id)
        #expect(ended.state == .nodeFail)
        #expect(ended.reason?.contains("SIGTERM") == true, "\(ended.reason ?? "")")
        #expect(processes(containing: "sleep \(marker)").isEmpty)
        #expect(try await cluster.mgpu(["logs", id.rawValue]).stdout == "0,1\n")
        #expect(try await cluster.client.queue().nodes.first?.state == .down, "the node left")
    }
}
}
