import Benchmark
import Foundation
import MgpuCore
import MgpuWire

/// What crosses the wire and the terminal on every job: the master's answer to an agent's sync carrying 8 jobs to
/// start (encoded at the master, decoded at the agent, each with a 40-variable environment), and a 10,000-line table.
func wireBenchmarks() -> BenchmarkSuite {
    let suite = BenchmarkSuite(name: "wire")
    let environment = benchEnvironment()
    let response = SyncResponse(start: (0..<8).map { i in
        WorkItem(jobId: JobID(number: UInt32(i + 1)), rank: 0, nodeCount: 1, gpus: [i], command: "python train.py --seed \(i)",
                 workdir: "/home/alice/project", environment: environment, killGraceSeconds: 10, user: "alice", name: "train")
    })
    let encoder = JSONEncoder(), decoder = JSONDecoder()
    let encoded = try! encoder.encode(response)
    suite.benchmark("sync answer with 8 jobs: encode (master)") {
        let bytes = try encoder.encode(response)
        precondition(bytes.count == encoded.count)
    }
    suite.benchmark("sync answer with 8 jobs: decode (agent)") {
        let decoded = try decoder.decode(SyncResponse.self, from: encoded)
        precondition(decoded.start.count == 8)
    }
    let table = Table(header: ["JOBID", "NAME", "USER", "STATE", "GPUS", "ELAPSED", "TIME LEFT", "REASON"],
                      rows: (0..<10_000).map { i in
                          [JobID(number: UInt32(i)).rawValue, "train", "alice", "PENDING", "1", "0:05", "1:00:00",
                           "waiting: \(i) jobs of higher priority"]
                      })
    suite.benchmark("table: 10,000 lines rendered") {
        precondition(table.render().utf8.count > 500_000)
    }
    return suite
}
