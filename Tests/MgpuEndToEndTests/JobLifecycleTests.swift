import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

/// Real master and agents as separate processes; run one at a time (they are timing-sensitive on 2 cores).
extension EndToEndTests {
@Suite struct JobLifecycleTests {
    @Test func concurrentJobsGetDistinctGPUsWorkdirAndEnvironment() async throws {
        let cluster = try await TestCluster.start()
        defer { cluster.stop() }
        let cwd = cluster.dir + "/work/sub dir"
        try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
        // Each job waits for a release file, so all four are seen running at once however slow the machine.
        let script = #"echo "$MGPU_NODE_ID|$CUDA_VISIBLE_DEVICES|$CUDA_DEVICE_ORDER|$MGPU_JOB_ID|$(pwd)|$MY_SETTING" > "out.$MGPU_JOB_ID"; "#
            + #"i=0; while [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"#
        var ids: [JobID] = []
        for _ in 0..<4 { ids.append(try await cluster.submit([script], cwd: cwd, env: ["MY_SETTING": "from-submitter"])) }
        // All four run at once on the four GPUs.
        try await waitUntil("4 running jobs", timeout: 20) {
            try await cluster.client.queue().jobs.filter { $0.state == .running }.count == 4
        }
        FileManager.default.createFile(atPath: cwd + "/release", contents: nil)
        for id in ids { try await cluster.waitForState(id, [.completed]) }
        var seen = Set<String>()
        for id in ids {
            let fields = try #require(try? String(contentsOfFile: "\(cwd)/out.\(id)", encoding: .utf8))
                .trimmingCharacters(in: .newlines).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            #expect(fields.count == 6)
            seen.insert("\(fields[0]):\(fields[1])")
            #expect(fields[1].count == 1, "one GPU index")
            #expect(fields[2] == "PCI_BUS_ID")
            #expect(fields[3] == id.rawValue)
            #expect(fields[4] == cwd)
            #expect(fields[5] == "from-submitter")
            let info = try await cluster.job(id)
            #expect(info.placementText == "\(fields[0]):gpu\(fields[1])", "the job ran on the GPU the master recorded")
        }
        #expect(seen.count == 4, "four distinct node:GPU pairs, got \(seen)")
    }

    @Test func jobsQueueWhenGPUsAreFullAndStartWhenFreed() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let script = #"date +%s.%N > "start.$MGPU_JOB_ID"; sleep 0.7; date +%s.%N > "end.$MGPU_JOB_ID""#
        var ids: [JobID] = []
        for _ in 0..<3 { ids.append(try await cluster.submit([script])) }
        let queue = try await cluster.mgpu(["queue"])
        #expect(queue.status == 0)
        #expect(queue.stdout.contains("waiting for 1 GPU"), "pending jobs say why: \(queue.stdout)")
        #expect(queue.stdout.contains("node001:gpu0"))
        for id in ids { try await cluster.waitForState(id, [.completed]) }
        func time(_ kind: String, _ id: JobID) throws -> Double {
            try #require(Double(cluster.read("work/\(kind).\(id)")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        }
        for i in 1..<3 {
            let start = try time("start", ids[i]), previousEnd = try time("end", ids[i - 1])
            #expect(start >= previousEnd, "job \(i) started before job \(i - 1) ended: one GPU, never shared")
            #expect(start - previousEnd < 1.0, "the next job starts as soon as the GPU is free (gap \(start - previousEnd) s)")
        }
    }

    @Test func cancelKillsTheWholeProcessGroup() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let marker = "7\(Int.random(in: 100_000...999_999))"
        let running = try await cluster.submit(["--kill-grace", "2", "sleep \(marker) & sleep \(marker) & echo started; wait"])
        let pending = try await cluster.submit(["true"])
        try await cluster.waitForState(running, [.running])
        try await waitUntil("the job's children", timeout: 10) { processes(containing: "sleep \(marker)").count >= 2 }

        let cancel = try await cluster.mgpu(["cancel", pending.rawValue, running.rawValue])
        #expect(cancel.status == 0)
        #expect(cancel.stdout.contains("job \(pending) cancelled"))
        #expect(cancel.stdout.contains("job \(running) cancelling"))
        #expect(try await cluster.job(pending).state == .cancelled)
        let ended = try await cluster.waitForState(running, [.cancelled])
        #expect(ended.exit?.signal == 15)
        #expect(processes(containing: "sleep \(marker)").isEmpty, "no child of the cancelled job is left")
        let again = try await cluster.mgpu(["cancel", running.rawValue])
        #expect(again.stdout.contains("already ended (CANCELLED)"))
        let logs = try await cluster.mgpu(["logs", running.rawValue])
        #expect(logs.stdout == "started\n")
    }

    @Test func logsFollowStdoutAndStderrSeparately() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let id = try await cluster.submit(["for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.2; done; exit 3"])
        let follow = try await cluster.mgpu(["logs", "-f", id.rawValue])
        #expect(follow.status == 0)
        #expect(follow.stdout == "out 1\nout 2\nout 3\n")
        #expect(follow.stderr == "err 1\nerr 2\nerr 3\n")
        let info = try await cluster.waitForState(id, [.failed])
        #expect(info.exit?.code == 3)
        let queue = try await cluster.mgpu(["queue", "--json"])
        let decoded = try JSONDecoder().decode(QueueResponse.self, from: Data(queue.stdout.utf8))
        #expect(decoded.jobs.first { $0.id == id }?.state == .failed)
    }

    @Test func cpuOnlyJobsSeeNoGPUAndNeverWaitForOne() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let holder = try await cluster.submit(["sleep 30"])
        try await cluster.waitForState(holder, [.running])
        let cpu = try await cluster.submit(["--gpus", "0", #"echo "[$CUDA_VISIBLE_DEVICES]" > cpu.out"#])
        try await cluster.waitForState(cpu, [.completed])
        #expect(cluster.read("work/cpu.out") == "[]\n")
        _ = try await cluster.mgpu(["cancel", holder.rawValue])
    }

    @Test func fromFileSubmitsOneJobPerLineInOneRequest() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 2])
        defer { cluster.stop() }
        let lines = (1...5).map { #"echo "line \#($0) $SHARED" > from.\#($0)"# }
        try ("# a comment\n\n" + lines.joined(separator: "\n") + "\n").write(toFile: cluster.dir + "/work/commands.txt", atomically: true, encoding: .utf8)
        let r = try await cluster.mgpu(["submit", "--gpus", "1", "--from-file", "commands.txt"], env: ["SHARED": "same-env"])
        #expect(r.status == 0, "\(r.stderr)")
        let ids = r.stdout.split(separator: "\n").compactMap { $0.hasPrefix("Submitted job ") ? JobID(String($0.dropFirst(14))) : nil }
        #expect(ids.count == 5, "one id per command line, comments and blank lines skipped: \(r.stdout)")
        for (i, id) in ids.enumerated() {
            let info = try await cluster.waitForState(id, [.completed])
            #expect(info.command == lines[i], "job \(i + 1) runs line \(i + 1)")
        }
        for i in 1...5 { #expect(cluster.read("work/from.\(i)") == "line \(i) same-env\n") }
        // From stdin with -, and an empty file is refused with exit code 2.
        let piped = try await cluster.mgpu(["submit", "--gpus", "0", "--from-file", "-"], stdin: "true\ntrue\n")
        #expect(piped.stdout.components(separatedBy: "Submitted job ").count == 3, "\(piped.stdout) \(piped.stderr)")
        let empty = try await cluster.mgpu(["submit", "--from-file", "-"], stdin: "# nothing\n")
        #expect(empty.status == 2 && empty.stderr.contains("has no command"), "\(empty.stderr)")
    }

    @Test func pinnedJobsRunOnExactlyTheirGPUs() async throws {
        let cluster = try await TestCluster.start()
        defer { cluster.stop() }
        let id = try await cluster.submit(["--node-gpu-ids", "node002:1", #"echo "$MGPU_NODE_ID $CUDA_VISIBLE_DEVICES" > pinned.out"#])
        try await cluster.waitForState(id, [.completed])
        #expect(cluster.read("work/pinned.out") == "node002 1\n")
    }
}
}
