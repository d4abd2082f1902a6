import Benchmark
import MgpuCore

/// One scheduling pass (`Scheduler.plan`) over 100,000 pending jobs and 1,000 nodes of 8 GPUs, in the situations
/// the master meets: a full cluster (the usual case with a long queue), one GPU just freed, an empty cluster (8,000
/// jobs start in one pass), and a full cluster with a CPU-only job at the very end of the queue (the whole queue
/// is walked). Target: under 50 ms a pass.
func schedulerBenchmarks() -> BenchmarkSuite {
    let nodeCount = 1000, gpusPerNode = 8, pendingCount = 100_000
    let suite = BenchmarkSuite(name: "scheduler")
    func cluster(busy: (Int) -> Set<Int>) -> [NodeCapacity] {
        (0..<nodeCount).map { n in
            NodeCapacity(id: "node\(String(n + 10000).dropFirst())", gpus: Array(0..<gpusPerNode), busyGPUs: busy(n), cpuSlots: 4, cpuSlotsUsed: 4)
        }
    }

    let queue: [PendingJob] = (0..<pendingCount).map { i in
        // Mostly 1-GPU jobs, some 2, 4 and 8-GPU ones, a few two-node jobs.
        let gpus = [1, 1, 1, 1, 2, 4, 8][i % 7]
        return PendingJob(id: JobID(number: UInt32(i + 1)), request: ResourceRequest(gpusPerNode: gpus, nodes: i % 97 == 96 ? 2 : 1))
    }
    var queueWithCPUJobAtTheEnd = queue
    queueWithCPUJobAtTheEnd.append(PendingJob(id: JobID(number: UInt32(pendingCount + 1)), request: ResourceRequest(gpusPerNode: 0)))

    let full = cluster { _ in Set(0..<gpusPerNode) }
    let oneFree = cluster { n in n == 500 ? Set(1..<gpusPerNode) : Set(0..<gpusPerNode) }
    let empty = cluster { _ in [] }
    var fullWithASlot = full
    fullWithASlot[0].cpuSlotsUsed = 3

    suite.benchmark("pass: 100k pending, 1000 full nodes") {
        precondition(Scheduler.plan(queue: queue, nodes: full, cpuOnlyPending: 0).assignments.isEmpty)
    }
    suite.benchmark("pass: 100k pending, 1000 nodes, one GPU free") {
        precondition(Scheduler.plan(queue: queue, nodes: oneFree, cpuOnlyPending: 0).assignments.count == 1)
    }
    suite.benchmark("pass: 100k pending, 1000 empty nodes (jobs start)") {
        precondition(!Scheduler.plan(queue: queue, nodes: empty, cpuOnlyPending: 0).assignments.isEmpty)
    }
    suite.benchmark("pass: 100k pending, full, CPU-only job last (walks all)") {
        precondition(Scheduler.plan(queue: queueWithCPUJobAtTheEnd, nodes: fullWithASlot, cpuOnlyPending: 1).assignments.count == 1)
    }
    // What every pass at the master starts from: each node's capacity, from the nodes and the running jobs' parts.
    let nodes = (0..<nodeCount).map { n in
        Node(id: "node\(String(n + 10000).dropFirst())", address: "10.0.\(n / 256).\(n % 256)",
             gpus: (0..<gpusPerNode).map { GPU(index: $0, uuid: "GPU-\(n)-\($0)", name: "NVIDIA A100-SXM4-80GB", memoryMB: 81920) },
             cpuSlots: 16, now: 0, incarnation: "i\(n)")
    }.shuffled()
    let running = (0..<4000).map { i in
        var job = Job(id: JobID(number: UInt32(i + 1)), seq: Int64(i), name: "train", user: "alice", command: "python train.py",
                      workdir: "/home/alice", environment: [:], request: ResourceRequest(gpusPerNode: 1), submitTime: 0)
        job.state = .running
        job.parts = [JobPart(rank: 0, nodeId: "node\(String(i / 4 + 10000).dropFirst())", gpus: [i % 4])]
        return job
    }
    // As the master holds them: jobs by id, and the set of the running ones.
    let jobs = Dictionary(uniqueKeysWithValues: running.map { ($0.id, $0) }), runningIDs = Set(running.map(\.id))
    suite.benchmark("capacities: 1000 nodes of 8 GPUs, 4000 running jobs") {
        let parts = runningIDs.compactMap { id in jobs[id]?.isActive == true ? jobs[id]?.parts : nil }
        let caps = NodeCapacity.build(nodes: nodes, activeParts: parts, now: 1, nodeTimeout: 30)
        precondition(caps.count == nodeCount && caps[0].busyGPUs.count == 4)
    }
    // What a pass reads now: the capacities kept as jobs start and end (a job ends, another starts, between passes).
    var ledger = CapacityLedger(nodes: nodes, activeParts: running.map(\.parts))
    let ending = running[0].parts, starting = [JobPart(rank: 0, nodeId: running[0].parts[0].nodeId, gpus: [7])]
    suite.benchmark("capacities kept: 1000 nodes of 8 GPUs, a job ends and one starts") {
        ledger.remove(ending)
        ledger.add(starting)
        let caps = ledger.capacities(now: 1, nodeTimeout: 30)
        precondition(caps.count == nodeCount && caps[0].busyGPUs == [1, 2, 3, 7])
        ledger.remove(starting)
        ledger.add(ending)
    }
    return suite
}
