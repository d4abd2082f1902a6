import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

extension EndToEndTests {
    @Suite struct HistoryTests {
        /// Two real jobs on simulated GPUs (which report power and utilisation while a job holds them): their
        /// accounting records (GPU-hours from the real elapsed time, energy from telemetry), `mgpu history`'s filters,
        /// its CSV replayed by `mgpu sim`, `mgpu report`, a user who sees only their own jobs, and a master restart.
        @Test func accountingHistoryAndReport() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            // Busy for 3.5 s: its simulated GPUs are as busy as it keeps a CPU.
            let train = try await cluster.submit(["--name", "train", "--gpus", "2", "python3 -c 'import time\nt = time.time() + 3.5\nwhile time.time() < t: pass'"])
            let bad = try await cluster.submit(["--name", "bad", "--gpus", "0", "exit 3"])
            try await cluster.waitForState(train, [.completed])
            try await cluster.waitForState(bad, [.failed])

            func history(_ args: [String] = [], env: [String: String] = [:]) async throws -> [HistoryRecord] {
                let result = try await cluster.mgpu(["history", "--json"] + args, env: env)
                #expect(result.status == 0, "\(result.stderr)")
                return try JSONDecoder().decode(HistoryResponse.self, from: Data(result.stdout.utf8)).records
            }
            let all = try await history()
            #expect(all.map(\.id) == [bad, train] || all.map(\.id) == [train, bad])
            let record = try #require(all.first { $0.id == train })
            #expect(record.gpus == 2 && record.elapsed >= 3.4 && record.wait != nil)
            #expect(abs(record.gpuHours * 3600 - 2 * record.elapsed) < 0.05, "GPU-hours from the real elapsed time: \(record.gpuHours)")
            #expect((record.energyWh ?? 0) > 0.05, "about 245 W × 2 GPUs sampled each second: \(record.energyWh ?? -1) Wh")
            #expect((record.meanUtilization ?? 0) > 50 && (record.peakMemoryMB ?? 0) > 0)
            #expect(record.gpuModels == ["Simulated GPU"] && record.nodes == "node001:gpu0,1")
            // Its GPUs over time: in the job's own record, not in listings.
            let one = try await cluster.job(train)
            #expect((one.usage?.series?.times.count ?? 0) >= 2 && (one.usage?.series?.utilization.max() ?? 0) > 50)
            #expect(!(try await cluster.mgpu(["queue", "--json"])).stdout.contains("\"series\""))
            let failed = try #require(all.first { $0.id == bad })
            #expect(failed.state == .failed && failed.exit == "exit code 3" && failed.gpuHours == 0 && failed.energyWh == nil)

            #expect(try await history(["--state", "FAILED"]).map(\.id) == [bad])
            #expect(try await history(["--name", "train"]).map(\.id) == [train])
            #expect(try await history(["--node", "node001", "--since", "1h"]).count == 2)
            #expect(try await history(["--node", "node002"]).isEmpty)
            #expect(try await history(["--until", "1h"]).isEmpty)
            #expect(try await history(["-n", "1"]).count == 1)
            let table = try await cluster.mgpu(["history"])
            #expect(table.stdout.hasPrefix("JOBID") && table.stdout.contains(train.rawValue) && table.stdout.contains(" Wh"), "\(table.stdout)")

            // The CSV replays through mgpu sim.
            let csv = try await cluster.mgpu(["history", "--csv"])
            #expect(csv.stdout.hasPrefix("job_id,user,submit_time,num_gpu,duration,time_limit,"))
            try csv.stdout.write(toFile: cluster.dir + "/history.csv", atomically: true, encoding: .utf8)
            let replay = try await cluster.mgpu(["sim", "--trace", cluster.dir + "/history.csv", "--nodes", "1", "--gpus-per-node", "2", "--json"])
            #expect(replay.status == 0 && replay.stdout.contains("\"jobs\" : 2"), "\(replay.stdout) \(replay.stderr)")

            let report = try await cluster.mgpu(["report", "--json", "--by", "gpu-type"])
            let sums = try JSONDecoder().decode(ReportResponse.self, from: Data(report.stdout.utf8))
            #expect(Set(sums.rows.map(\.key)) == ["Simulated GPU", "cpu"], "\(report.stdout)")
            #expect(sums.rows.reduce(0) { $0 + $1.jobs } == 2 && sums.rows.reduce(0) { $0 + $1.failures } == 1)
            #expect(abs(sums.rows.reduce(0) { $0 + $1.gpuHours } - record.gpuHours) < 1e-6)
            let byUser = try await cluster.mgpu(["report"])
            #expect(byUser.stdout.hasPrefix("USER") && byUser.stdout.contains("kWh"), "\(byUser.stdout)")

            // Another user sees only their own (none), and not everyone's.
            let nobody = try await cluster.mgpu(["admin", "user", "add", "nobody"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await history(env: ["MGPU_TOKEN": nobody]).isEmpty)
            let denied = try await cluster.mgpu(["history", "--all-users"], env: ["MGPU_TOKEN": nobody])
            #expect(denied.status != 0 && denied.stderr.contains("only an admin"), "\(denied.stderr)")
            let bySomeoneElse = try await cluster.mgpu(["report", "--user", "root"], env: ["MGPU_TOKEN": nobody])
            #expect(bySomeoneElse.status != 0 && bySomeoneElse.stderr.contains("only an admin"), "\(bySomeoneElse.stderr)")
            let badSince = try await cluster.mgpu(["history", "--since", "yesterday"])
            #expect(badSince.status != 0 && badSince.stderr.contains("--since takes"), "\(badSince.stderr)")

            // A restart keeps all of it.
            try await cluster.killMaster()
            try await cluster.startMaster()
            let after = try await history()
            #expect(after.count == 2 && after.first { $0.id == train }?.energyWh == record.energyWh)
        }
    }
}

extension EndToEndTests.HistoryTests {
    /// `mgpu wait`: one line per job, the first failing exit code, an array as one, `--timeout` exits 124.
    @Test func waitExitsWithTheFirstFailure() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 2])
        defer { cluster.stop() }
        let ok = try await cluster.submit(["--gpus", "0", "sleep 0.3"])
        let bad = try await cluster.submit(["--gpus", "0", "exit 3"])
        let worse = try await cluster.submit(["--gpus", "0", "exit 5"])
        let waited = try await cluster.mgpu(["wait", ok.rawValue, bad.rawValue, worse.rawValue])
        #expect(waited.status == 3, "the first failing job's code: \(waited.stdout) \(waited.stderr)")
        let lines = waited.stdout.split(separator: "\n")
        #expect(lines.count == 3 && lines[0].hasPrefix("\(ok) COMPLETED (exit code 0, ran ") && lines[1].hasPrefix("\(bad) FAILED (exit code 3"), "\(waited.stdout)")
        #expect(try await cluster.mgpu(["wait", ok.rawValue]).status == 0)

        let array = try await cluster.submit(["--gpus", "0", "--array", "0-2", "exit $MGPU_ARRAY_TASK_ID"])
        let arrayWait = try await cluster.mgpu(["wait", array.rawValue])
        #expect(arrayWait.status == 1 && arrayWait.stdout.hasPrefix("\(array) FAILED"), "task 1 exits 1: \(arrayWait.stdout)")

        let long = try await cluster.submit(["--gpus", "0", "sleep 30"])
        let timedOut = try await cluster.mgpu(["wait", long.rawValue, "--timeout", "1"])
        #expect(timedOut.status == 124 && timedOut.stderr.contains("timed out waiting for job \(long)"), "\(timedOut.stderr)")
        let unknown = try await cluster.mgpu(["wait", "0000BEEF"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no job 0000BEEF"), "\(unknown.stderr)")
        let badID = try await cluster.mgpu(["wait", "nope"])
        #expect(badID.status != 0 && badID.stderr.contains("job id must be"), "\(badID.stderr)")
    }
}
