import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

extension EndToEndTests {
    @Suite struct PolicyTests {
        /// Two users: `nobody` floods the queue with 20 jobs, then `daemon` submits two. Under fair share daemon's jobs
        /// start within the next few slots, not after the flood (as they would in submission order). Under a root agent
        /// the two are real Unix accounts.
        @Test func aFloodDoesNotHoldUpAnotherUser() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            let nobody = try await cluster.mgpu(["admin", "user", "add", "nobody"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let daemon = try await cluster.mgpu(["admin", "user", "add", "daemon"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let pub = cluster.dir + "/pub"
            try FileManager.default.createDirectory(atPath: pub, withIntermediateDirectories: true)
            chmod(cluster.dir, 0o755)
            chmod(pub, 0o1777)
            let flood = try await cluster.mgpu(["submit", "--from-file", "-", "--time", "1"], cwd: pub, env: ["MGPU_TOKEN": nobody],
                                               stdin: (1...20).map { _ in "sleep 0.4" }.joined(separator: "\n"))
            #expect(flood.status == 0, "\(flood.stderr)")
            let floodIds = flood.stdout.split(separator: "\n").compactMap { JobID(String($0.split(separator: " ").last ?? "")) }
            try await cluster.waitForState(floodIds[0], [.running, .completed])
            var mine: [JobID] = []
            for _ in 0..<2 { mine.append(try await cluster.submit(["--time", "1", "sleep 0.4"], cwd: pub, env: ["MGPU_TOKEN": daemon])) }
            // The pending flood jobs show their priority; daemon's waits for fewer jobs than the flood left.
            let queue = try await cluster.client.queue()
            let waiting = queue.jobs.first { $0.id == mine[0] }
            if waiting?.state == .pending { #expect(waiting?.priority != nil, "a pending job's priority is in the listing") }
            for id in mine { try await cluster.waitForState(id, [.completed], timeout: 60) }
            let all = try await cluster.client.queue().jobs
            let starts = Dictionary(all.compactMap { job in job.startTime.map { (job.id, $0) } }, uniquingKeysWith: { a, _ in a })
            let mineStarted = try mine.map { try #require(starts[$0]) }.max()!
            let floodBefore = floodIds.filter { (starts[$0] ?? .infinity) < mineStarted }.count
            #expect(floodBefore <= 5, "daemon's jobs started after only \(floodBefore) of nobody's 20 (within the next slots)")
            if geteuid() == 0 {
                let owner = try await cluster.mgpu(["logs", mine[0].rawValue], env: ["MGPU_TOKEN": daemon])
                #expect(owner.status == 0)
            }
        }

        /// The same small trace through the live master (real agent, real jobs) and through `mgpu sim`: the jobs start
        /// in the same order.
        @Test func theLiveMasterAndSimStartATraceInTheSameOrder() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            // One GPU; heavy user "nobody" submits first, then a burst of both. Durations far apart, so that timing noise
            // on this machine cannot reorder what ends first.
            let trace: [(user: String, seconds: Double)] = [("nobody", 1.2), ("nobody", 0.6), ("daemon", 0.6), ("nobody", 0.6),
                                                            ("daemon", 0.6), ("nobody", 0.6)]
            var csv = "job_id,user,submit_time,num_gpu,duration,time_limit\n"
            for (i, job) in trace.enumerated() { csv += "\(i),\(job.user),0,1,\(job.seconds),0\n" }
            try csv.write(toFile: cluster.dir + "/trace.csv", atomically: true, encoding: .utf8)
            let simulated = try await cluster.mgpu(["sim", "--trace", cluster.dir + "/trace.csv", "--nodes", "1", "--gpus-per-node", "1", "--json"])
            #expect(simulated.status == 0, "\(simulated.stderr)")

            var tokens: [String: String] = [:]
            for user in Set(trace.map(\.user)) {
                tokens[user] = try await cluster.mgpu(["admin", "user", "add", user]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let pub = cluster.dir + "/pub"
            try FileManager.default.createDirectory(atPath: pub, withIntermediateDirectories: true)
            chmod(cluster.dir, 0o755)
            chmod(pub, 0o1777)
            var ids: [JobID] = []
            for job in trace {
                ids.append(try await cluster.submit(["sleep \(job.seconds)"], cwd: pub, env: ["MGPU_TOKEN": tokens[job.user]!]))
            }
            for id in ids { try await cluster.waitForState(id, [.completed], timeout: 60) }
            let jobs = try await cluster.client.queue().jobs
            let liveOrder = ids.sorted { a, b in
                (jobs.first { $0.id == a }?.startTime ?? 0) < (jobs.first { $0.id == b }?.startTime ?? 0)
            }.map { ids.firstIndex(of: $0)! }
            struct Sim: Decodable { var start_order: [String] }
            let simOrder = try JSONDecoder().decode(Sim.self, from: Data(simulated.stdout.utf8)).start_order.compactMap(Int.init)
            #expect(liveOrder == simOrder, "live \(liveOrder), simulated \(simOrder)")
            #expect(simOrder == [0, 2, 4, 1, 3, 5], "fair share: daemon's jobs between nobody's (\(simOrder))")

            // The same replay under a config file's [policy] (fifo), and with --policy default (fair share).
            let simArgs = ["sim", "--trace", cluster.dir + "/trace.csv", "--nodes", "1", "--gpus-per-node", "1", "--json"]
            try "# a lab's policy\n[policy]\npolicy = \"fifo\"\ndefault_time = \"1:00:00\"\n".write(toFile: cluster.dir + "/mgpu.toml", atomically: true, encoding: .utf8)
            let fifo = try await cluster.mgpu(simArgs + ["--config", cluster.dir + "/mgpu.toml"])
            #expect(try JSONDecoder().decode(Sim.self, from: Data(fifo.stdout.utf8)).start_order.compactMap(Int.init) == [0, 1, 2, 3, 4, 5], "\(fifo.stderr)")
            let byDefault = try await cluster.mgpu(simArgs + ["--policy", "default", "--config", cluster.dir + "/mgpu.toml"])
            #expect(try JSONDecoder().decode(Sim.self, from: Data(byDefault.stdout.utf8)).start_order.compactMap(Int.init) == simOrder, "the flag wins over the file")
            try "[policy]\npolicy = \"fifo\"\ndefault_tme = \"1:00:00\"\n".write(toFile: cluster.dir + "/mgpu.toml", atomically: true, encoding: .utf8)
            let bad = try await cluster.mgpu(simArgs + ["--config", cluster.dir + "/mgpu.toml"])
            #expect(bad.status == 2 && bad.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1, "\(bad.stderr)")
            #expect(bad.stderr.contains("mgpu.toml:3: unknown key \"default_tme\" in [policy] (did you mean default_time?)"), "\(bad.stderr)")
        }

        /// A pipeline through the CLI: `afterok` starts only once the real process has exited 0 (its file exists),
        /// `afternotok` runs after a failure, and `afterok` on a failed job is cancelled saying why.
        @Test func dependenciesFollowTheRealExit() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            let marker = cluster.dir + "/first-done"
            let first = try await cluster.submit(["sleep 0.5 && touch \(marker)"])
            let failing = try await cluster.submit(["exit 3"])
            let then = try await cluster.submit(["--dependency", "afterok:\(first)", "test -e \(marker)"])
            let rescue = try await cluster.submit(["--dependency", "afternotok:\(failing)", "true"])
            let never = try await cluster.submit(["--dependency", "afterok:\(first):\(failing)", "true"])
            let note = try await cluster.client.queue().jobs.first { $0.id == then }
            if note?.state == .pending { #expect(note?.note == "waiting for job \(first) to complete successfully") }
            #expect(try await cluster.waitForState(then, [.completed, .failed]).state == .completed, "it ran after the marker was written")
            #expect(try await cluster.waitForState(rescue, [.completed]).state == .completed)
            let cancelled = try await cluster.waitForState(never, [.cancelled])
            #expect(cancelled.reason == "dependency never satisfied: job \(failing) ended FAILED")
            let bad = try await cluster.mgpu(["submit", "--dependency", "afterok:nope", "true"])
            #expect(bad.status != 0 && bad.stderr.contains("is not a job id") && !bad.stderr.contains("Stack"), "\(bad.stderr)")
            let unknown = try await cluster.mgpu(["submit", "--dependency", "afterany:0000BEEF", "true"])
            #expect(unknown.status != 0 && unknown.stderr.contains("does not know"), "\(unknown.stderr)")
        }

        /// `--array 0-5%2` on four free GPUs: six tasks, never more than two at once (each task counts the tasks
        /// running beside it in files), each told its index; the queue shows the pending rest of an array on one
        /// line; `mgpu cancel ID_N` takes one task, `mgpu cancel ID` the rest and the running one.
        @Test func arrayTasksRunAtMostMaxAtOnce() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 4])
            defer { cluster.stop() }
            let dir = cluster.dir + "/array"
            try FileManager.default.createDirectory(atPath: dir + "/running", withIntermediateDirectories: true)
            let task = "touch \(dir)/running/$MGPU_ARRAY_TASK_ID; ls \(dir)/running | wc -l > \(dir)/seen.$MGPU_ARRAY_TASK_ID; "
                + "echo $MGPU_JOB_ID $MGPU_ARRAY_JOB_ID $MGPU_ARRAY_TASK_ID $MGPU_ARRAY_TASK_COUNT > \(dir)/env.$MGPU_ARRAY_TASK_ID; "
                + "sleep 0.6; rm \(dir)/running/$MGPU_ARRAY_TASK_ID"
            let id = try await cluster.submit(["--array", "0-5%2", "--time", "1", task])
            for index in 0...5 { try await cluster.waitForState(JobID(parent: id, index: index), [.completed]) }
            var most = 0
            for index in 0...5 {
                let seen = try String(contentsOfFile: "\(dir)/seen.\(index)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                most = max(most, Int(seen) ?? 99)
                let env = try String(contentsOfFile: "\(dir)/env.\(index)", encoding: .utf8)
                #expect(env == "\(id)_\(index) \(id) \(index) 6\n")
            }
            #expect(most <= 2, "at most two tasks ran at once; seen \(most)")

            // One line for the rest; one task cancelled on its own; then the whole array.
            let second = try await cluster.mgpu(["submit", "--array", "0-9%1", "sleep 30"])
            #expect(second.stdout.hasPrefix("Submitted array job ") && second.stdout.contains("(10 tasks: ") && second.stdout.contains("_[0-9], at most 1 at once)"), "\(second.stdout)")
            let array = try #require(JobID(String(second.stdout.split(separator: " ")[3])))
            try await cluster.waitForState(JobID(parent: array, index: 0), [.running])
            let cancelOne = try await cluster.mgpu(["cancel", "\(array)_5"])
            #expect(cancelOne.status == 0, "\(cancelOne.stderr)")
            let queue = try await cluster.mgpu(["queue"])
            #expect(queue.stdout.contains("\(array)_[1-4,6-9%1]"), "\(queue.stdout)")
            #expect(queue.stdout.contains("\(array)_0 "), "the running task has a line of its own: \(queue.stdout)")
            #expect(try await cluster.job(JobID(parent: array, index: 7)).state == .pending, "a task not started can be asked for")
            #expect(try await cluster.job(JobID(parent: array, index: 5)).state == .cancelled)
            let cancelAll = try await cluster.mgpu(["cancel", array.rawValue])
            #expect(cancelAll.status == 0, "\(cancelAll.stderr)")
            #expect(try await cluster.waitForState(JobID(parent: array, index: 0), [.cancelled]).state == .cancelled)
            let after = try await cluster.mgpu(["queue"])
            let rest = after.stdout.split(separator: "\n").filter { $0.contains("\(array)_[") || $0.contains("\(array)_0 ") }
            #expect(rest.count == 2 && rest.allSatisfy { $0.contains("CANCELLED") }, "\(after.stdout)")
            let bad = try await cluster.mgpu(["submit", "--array", "5-1", "true"])
            #expect(bad.status != 0 && bad.stderr.contains("--array takes indices as Slurm writes them") && !bad.stderr.contains("Stack"), "\(bad.stderr)")
        }

        /// A preemptible job holds the only GPU; a normal job arrives: the preemptible one gets SIGTERM (its trap
        /// writes a file), goes back to the queue, the normal job runs, then the preemptible one runs again and
        /// finishes. Its history says PREEMPTED.
        @Test func aPreemptibleJobIsRequeuedAndLaterFinishes() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let dir = cluster.dir + "/preempt"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            // First run: wait for SIGTERM (noted in a file); later runs finish at once.
            let spareCommand = "echo run >> \(dir)/runs; if [ $(wc -l < \(dir)/runs) -eq 1 ]; then "
                + "trap 'echo TERM > \(dir)/term; exit 143' TERM; while :; do sleep 0.1; done; fi"
            let spare = try await cluster.submit(["--preemptible", spareCommand])
            try await cluster.waitForState(spare, [.running])
            try await waitUntil("the first run to start", timeout: 10) { FileManager.default.fileExists(atPath: dir + "/runs") }
            let normal = try await cluster.submit(["--time", "1", "echo normal > \(dir)/normal"])
            #expect(try await cluster.waitForState(normal, [.completed]).state == .completed)
            let done = try await cluster.waitForState(spare, [.completed, .failed, .cancelled])
            #expect(done.state == .completed && done.requeues == 1)
            #expect(done.history?.map(\.state) == ["PREEMPTED"] && done.history?.first?.reason == "preempted by job \(normal)")
            #expect(try String(contentsOfFile: dir + "/term", encoding: .utf8) == "TERM\n", "the first run got SIGTERM")
            #expect(try String(contentsOfFile: dir + "/runs", encoding: .utf8) == "run\nrun\n")
        }
    }
}
