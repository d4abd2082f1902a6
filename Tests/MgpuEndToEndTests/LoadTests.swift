import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

/// 100 simulated agents (real HTTP, in this process) heartbeating every second and 50 clients submitting, listing
/// and cancelling as fast as they can, against a master process on loopback, for `MGPU_LOAD_SECONDS` (default 60).
/// Prints requests/s and p50/p99 latency per endpoint, and checks that no request failed, no acknowledged job was
/// lost, and no GPU was ever held by two jobs at once: neither in what the agents were told to run, nor in the
/// master's own record of every job's start, end and GPUs.
///
/// It loads both cores, so it runs on its own: `MGPU_LOAD_TEST=1 swift test --skip-build --filter LoadTests`
/// (scripts/test does this after the other tests).
@Suite struct LoadTests {
    static let enabled = ProcessInfo.processInfo.environment["MGPU_LOAD_TEST"] == "1"

    @Test(.enabled(if: enabled, "set MGPU_LOAD_TEST=1 (scripts/test runs it on its own)"))
    func hundredAgentsAndFiftyClientsForAMinute() async throws {
        let seconds = Double(ProcessInfo.processInfo.environment["MGPU_LOAD_SECONDS"] ?? "") ?? 60
        let cluster = try await TestCluster.start(agents: [:])
        defer { cluster.stop() }
        let secret = try #require(cluster.read("state/cluster.secret")).trimmingCharacters(in: .whitespacesAndNewlines)
        let agentClient = MasterClient(host: "127.0.0.1", port: cluster.port, token: secret)
        let userClient = cluster.client
        let record = LoadRecord()
        let deadline = Date().addingTimeInterval(seconds)
        let started = Date()

        let acknowledged = await withTaskGroup(of: [JobID].self) { group in
            for n in 0..<100 {
                group.addTask {
                    await SimulatedAgent(id: String(format: "load%03d", n), client: agentClient, record: record).run(until: deadline)
                    return []
                }
            }
            for n in 0..<50 {
                group.addTask { await LoadClient(seed: UInt64(n), client: userClient, record: record).run(until: deadline) }
            }
            return await group.reduce(into: [JobID]()) { $0 += $1 }
        }
        let elapsed = Date().timeIntervalSince(started)

        print(await record.report(seconds: elapsed))
        let errors = await record.errors
        #expect(errors.isEmpty, "\(errors.count) requests failed, e.g. \(errors.prefix(5))")
        let agentOverlaps = await record.overlaps
        #expect(agentOverlaps.isEmpty, "agents were told to start a job on a GPU still in use: \(agentOverlaps.prefix(5))")
        #expect(acknowledged.count > 100, "the clients got jobs in (\(acknowledged.count))")
        let startedOnAgents = await record.started
        #expect(startedOnAgents > 100, "the agents ran jobs (\(startedOnAgents))")

        // The master's record: every acknowledged job exactly once, and per GPU no two jobs' [start, end) overlap.
        let jobs = try await userClient.queue().jobs
        let ids = jobs.map(\.id)
        #expect(Set(ids).count == ids.count, "no job twice")
        let missing = Set(acknowledged).subtracting(ids)
        #expect(missing.isEmpty, "\(missing.count) acknowledged jobs missing, e.g. \(missing.prefix(5))")
        var intervals: [String: [(start: Double, end: Double, job: JobID)]] = [:]
        for job in jobs {
            guard let start = job.startTime else { continue }
            for part in job.parts {
                for gpu in part.gpus { intervals["\(part.nodeId):\(gpu)", default: []].append((start, job.endTime ?? .infinity, job.id)) }
            }
        }
        var overlaps: [String] = []
        for (gpu, list) in intervals {
            let sorted = list.sorted { $0.start < $1.start }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.start < a.end {
                overlaps.append("\(gpu): \(a.job) until \(a.end) and \(b.job) from \(b.start)")
            }
        }
        #expect(intervals.values.reduce(0) { $0 + $1.count } > 100, "GPU intervals to check")
        #expect(overlaps.isEmpty, "a GPU given to two jobs at once: \(overlaps.prefix(5))")
    }
}

/// What the load test saw: latencies per endpoint, errors, what the agents ran.
actor LoadRecord {
    var latencies: [String: [Double]] = [:]
    var errors: [String] = []
    var overlaps: [String] = []
    var started = 0

    func time<T: Sendable>(_ endpoint: String, _ call: () async throws -> T) async -> T? {
        let t0 = ContinuousClock.now
        do {
            let result = try await call()
            let d = ContinuousClock.now - t0
            latencies[endpoint, default: []].append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
            return result
        } catch {
            errors.append("\(endpoint): \(error)")
            return nil
        }
    }

    func overlap(_ text: String) { overlaps.append(text) }
    func start() { started += 1 }

    func report(seconds: Double) -> String {
        func ms(_ v: Double) -> String { let t = String(format: "%.1f", v * 1000); return String(repeating: " ", count: max(0, 9 - t.count)) + t }
        var lines = ["load test: 100 agents (sync every 1 s), 50 clients, \(String(format: "%.0f", seconds)) s; \(errors.count) errors",
                     "endpoint                   requests    req/s   p50 ms   p99 ms   max ms"]
        for (endpoint, values) in latencies.sorted(by: { $0.key < $1.key }) {
            let sorted = values.sorted()
            let p = { (q: Double) in sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
            lines.append(endpoint.padding(toLength: 26, withPad: " ", startingAt: 0)
                + String(format: " %9d %8.1f", sorted.count, Double(sorted.count) / seconds) + ms(p(0.5)) + ms(p(0.99)) + ms(sorted.last!))
        }
        lines.append("jobs started on agents: \(started)")
        return lines.joined(separator: "\n")
    }
}

/// An agent that registers two GPUs and syncs every second; a job "runs" for 0.2-2 s (or until cancelled) and is
/// reported finished at the next sync. It notes any start on a GPU it still has in use.
struct SimulatedAgent {
    let id: String
    /// With the cluster secret: it enrols, then speaks with the node credential it is given.
    let client: MasterClient
    let record: LoadRecord

    func run(until deadline: Date) async {
        var rng = SystemRandomNumberGenerator()
        let gpus = (0..<2).map { GPU(index: $0, uuid: "SIM-\(id)-\($0)", name: "Simulated GPU", memoryMB: 1024, simulated: true) }
        let registration = RegisterRequest(nodeId: id, incarnation: "load", gpus: gpus, cpuSlots: 2, advertiseAddress: nil)
        let enrolling = self.client
        guard let enrolled = await record.time("POST /v1/agent/register", { try await enrolling.register(registration) }),
              let credential = enrolled.credential else { return }
        let client = MasterClient(host: enrolling.host, port: enrolling.port, token: credential)
        var running: [JobID: (rank: Int, gpus: [Int], endAt: Date)] = [:]
        var finished: [FinishedPart] = []
        while Date() < deadline {
            let tick = Date()
            for (job, part) in running where part.endAt <= tick {
                finished.append(FinishedPart(jobId: job, rank: part.rank, exit: ExitStatus(code: 0)))
                running[job] = nil
            }
            let request = SyncRequest(nodeId: id, incarnation: "load",
                                      running: running.map { PartRef(jobId: $0.key, rank: $0.value.rank, gpus: $0.value.gpus) },
                                      finished: finished, wait: 0)
            if let answer = await record.time("POST /v1/agent/sync", { try await client.sync(request) }) {
                let acked = Set(answer.acknowledged.map(\.jobId))
                finished.removeAll { acked.contains($0.jobId) }
                if answer.reregister {
                    _ = await record.time("POST /v1/agent/register", { try await client.register(registration) })
                }
                let now = Date()
                for item in answer.start where running[item.jobId] == nil {
                    let busy = Set(running.values.flatMap(\.gpus))
                    if !busy.isDisjoint(with: item.gpus) {
                        await record.overlap("\(id): job \(item.jobId) on GPUs \(item.gpus) while \(busy.sorted()) are busy")
                    }
                    running[item.jobId] = (item.rank, item.gpus, now.addingTimeInterval(Double.random(in: 0.2...2, using: &rng)))
                    await record.start()
                }
                for item in answer.cancel { running[item.jobId]?.endAt = now }
            }
            try? await Task.sleep(for: .seconds(max(0, 1 - Date().timeIntervalSince(tick))))
        }
    }
}

/// A user as fast as the master answers: submits 1-3 jobs (60 %), lists the queue (30 %), cancels one of its jobs
/// (10 %). Returns the ids the master acknowledged.
struct LoadClient {
    let seed: UInt64
    let client: MasterClient
    let record: LoadRecord

    func run(until deadline: Date) async -> [JobID] {
        var rng = SystemRandomNumberGenerator()
        var mine: [JobID] = []
        while Date() < deadline {
            let roll = Int.random(in: 0..<10, using: &rng)
            if roll < 6 {
                let spec = JobSpec(name: nil, user: "load", command: "train --seed \(seed)", workdir: "/tmp", environment: [:],
                                   request: ResourceRequest(gpusPerNode: Int.random(in: 1...2, using: &rng)))
                let count = Int.random(in: 1...3, using: &rng)
                if let ids = await record.time("POST /v1/jobs", { try await client.submit(Array(repeating: spec, count: count)) }) {
                    mine += ids
                }
            } else if roll < 9 {
                _ = await record.time("GET /v1/queue?format=text", { try await client.queueTable() })
            } else if let victim = mine.randomElement(using: &rng) {
                _ = await record.time("POST /v1/jobs/cancel", { try await client.cancel([victim.rawValue]) })
            }
        }
        return mine
    }
}
