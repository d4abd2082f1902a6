import Benchmark
import Dispatch
import Foundation
import MgpuCore
import MgpuMaster
import MgpuWire
import Synchronization

/// The master's hot paths, on the real `MasterState` (in process, over its memory store, as the Harness runs it) and
/// the real SQLite store: a listing of 10,000 pending jobs as text and as JSON, a submission of 1,000 jobs, and the
/// commit of 1,000 new jobs to a database file.
func masterBenchmarks() async throws -> BenchmarkSuite {
    let suite = BenchmarkSuite(name: "master")
    let harness = try Harness(configure: { $0.maxPendingPerUser = 1_000_000 })
    try await harness.addNode("node1", gpus: 8)
    try await harness.settle()
    // A full cluster (one job holds every GPU) and 10,000 jobs waiting, as `bench/run` lists them.
    try await harness.submit("sleep 100000", request: ResourceRequest(gpusPerNode: 8))
    try await harness.settle()
    let environment = benchEnvironment()
    @Sendable func template(_ command: String) -> JobSpec {
        JobSpec(name: nil, user: "alice", command: command, workdir: "/home/alice", environment: environment,
                request: ResourceRequest(gpusPerNode: 1))
    }
    let commands = (1...10_000).map { "python train.py --seed \($0)" }
    let master = harness.master
    let queued = try await master.submit(SubmitRequest(jobs: [template("-")], commands: commands))
    precondition(queued.count == 10_000)

    suite.benchmark("listing: 10,000 pending, text (mgpu queue)") {
        // What the master sends (GET /v1/queue?format=text).
        let text = blocking { await master.queueListing(finishedWithin: 300, endedShown: QueueListing.endedShown).renderBytes() }
        precondition(text.count > 500_000)
    }
    suite.benchmark("listing: 10,000 pending, JSON, first") {
        let json = blocking {
            let listing = await master.queueRows(finishedWithin: 300)
            return try QueueJSON(encoder: QueueJSON.encoder).encode(now: listing.now, jobs: listing.jobs, nodes: listing.nodes)
        }
        precondition(json.count > 1_000_000)
    }
    let kept = QueueJSON(encoder: QueueJSON.encoder)
    suite.benchmark("listing: 10,000 pending, JSON, again") {
        let json = blocking {
            let listing = await master.queueRows(finishedWithin: 300)
            return try kept.encode(now: listing.now, jobs: listing.jobs, nodes: listing.nodes)
        }
        precondition(json.count > 1_000_000)
    }
    // Each run's jobs are cancelled again outside the measured part, so every run submits into the same queue.
    let bulk = SubmitRequest(jobs: [template("-")], commands: (1...1000).map { "python train.py --seed \($0)" })
    suite.benchmark("submit: 1,000 jobs in one request (memory store)") { state in
        var ids: [JobID] = []
        try state.measure { ids = blocking { try await master.submit(bulk) } }
        precondition(ids.count == 1000)
        let submitted = ids
        _ = blocking { try await master.cancel(submitted.map(\.rawValue)) }
    }
    suite.benchmark("submit: 1 job (memory store)") { state in
        var ids: [JobID] = []
        try state.measure { ids = blocking { try await master.submit([template("python train.py")]) } }
        let submitted = ids
        _ = blocking { try await master.cancel(submitted.map(\.rawValue)) }
    }

    suite.benchmark("cancel: 1 job of 10,000 pending (memory store)") { state in
        let ids = blocking { try await master.submit([template("python train.py")]) }
        var results: [CancelResponse.Result] = []
        try state.measure { results = blocking { try await master.cancel(ids.map(\.rawValue)) } }
        precondition(results.count == 1 && results[0].outcome == .cancelled)
    }

    // A busy node's heartbeat: it runs a part, and the master has told it that 4,096 ended parts may be forgotten (the
    // most it keeps per node, and where a node that has run jobs for a while stays).
    var agent = harness.agents["node1"]!
    var heartbeat = agent.report(now: harness.now)
    precondition(heartbeat.running.count == 1)
    var ended = heartbeat
    ended.running = []
    ended.finished = (1...UInt32(4096)).map {
        FinishedPart(jobId: JobID(number: 0x7000_0000 + $0), rank: 0, exit: ExitStatus(code: 0))
    }
    let acknowledged = try await master.sync(ended).acknowledged
    precondition(acknowledged.count == 4096)
    heartbeat.telemetry = nil
    let beat = heartbeat
    suite.benchmark("sync: a heartbeat of a node with 4,096 acknowledged parts") {
        let answer = blocking { try await master.sync(beat) }
        precondition(answer.isEmpty)
    }

    // The store alone: 1,000 new jobs committed to a database file (WAL, as the master opens it).
    let dir = NSTemporaryDirectory() + "mgpu-bench-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let store = try SQLiteStore(path: dir + "/mgpu.sqlite")
    let counter = Mutex<UInt32>(0)
    suite.benchmark("store: commit 1,000 new jobs (SQLite file)") { state in
        let first = counter.withLock { n in defer { n += 1000 }; return n }
        let jobs = (0..<UInt32(1000)).map { i in
            Job(id: JobID(number: first + i + 1), seq: Int64(first + i), name: "train", user: "alice", command: "python train.py",
                workdir: "/home/alice", environment: environment, request: ResourceRequest(gpusPerNode: 1), submitTime: 1_800_000_000)
        }
        try state.measure { try! store.commit(StoreChange(jobs: jobs)) }
    }
    return suite
}

/// An environment as `mgpu submit` sends from a login shell: 40 variables.
func benchEnvironment() -> [String: String] {
    var env = ["HOME": "/home/alice", "USER": "alice", "SHELL": "/bin/bash", "LANG": "C.UTF-8", "TERM": "xterm-256color",
               "PATH": "/home/alice/.local/bin:/opt/conda/bin:/usr/local/cuda/bin:/usr/local/bin:/usr/bin:/bin",
               "LD_LIBRARY_PATH": "/usr/local/cuda/lib64", "CONDA_DEFAULT_ENV": "base", "PWD": "/home/alice/project"]
    for i in env.count..<40 { env["VAR_\(i)"] = String(repeating: "v", count: 20 + i) }
    return env
}

/// Runs `body` to its end from a benchmark's synchronous closure.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> T {
    let result = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        let value: Result<T, any Error>
        do { value = .success(try await body()) } catch { value = .failure(error) }
        result.withLock { $0 = value }
        done.signal()
    }
    done.wait()
    switch result.withLock({ $0 })! {
    case .success(let value): return value
    case .failure(let error): fatalError("benchmark: \(error)")
    }
}
