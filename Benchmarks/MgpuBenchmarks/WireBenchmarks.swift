import Benchmark
import Foundation
import MgpuCore
import MgpuWire

/// What crosses the wire and the terminal on every job: the master's answer to an agent's sync carrying 8 jobs to
/// start (encoded at the master, decoded at the agent, each with a 40-variable environment), an agent's heartbeat
/// (decoded at the master), and a 10,000-line table.
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
    // A heartbeat of an 8-GPU node: 200 of them a second reach the master of a 1,000-node cluster. The sample as
    // an agent sends it (GPUs as rows, protocol 3) and as agents of protocol 1-2 did (objects).
    var heartbeat = SyncRequest(nodeId: "node0001", incarnation: "1764000000-4242", running: [], finished: [], wait: 0)
    heartbeat.telemetry = NodeTelemetry(time: 1_764_000_000.125, cpuPercent: 50, load: [1, 1, 1], memoryUsedMB: 30000,
                                        memoryTotalMB: 64000, gpus: (0..<8).map {
                                            GPUTelemetry(index: $0, utilization: 50, memoryUsedMB: 1000, memoryTotalMB: 24576,
                                                         temperatureC: 50, powerW: 200)
                                        })
    let rowsEncoder = JSONEncoder()
    rowsEncoder.userInfo[NodeTelemetry.compactGPUs] = true
    let rows = try! rowsEncoder.encode(heartbeat), objects = try! encoder.encode(heartbeat)
    suite.benchmark("sync heartbeat of 8 GPUs: decode (master)") {
        let decoded = try decoder.decode(SyncRequest.self, from: rows)
        precondition(decoded.telemetry?.gpus.count == 8)
    }
    suite.benchmark("sync heartbeat of 8 GPUs, as protocol 2 sent it: decode (master)") {
        let decoded = try decoder.decode(SyncRequest.self, from: objects)
        precondition(decoded.telemetry?.gpus.count == 8)
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
