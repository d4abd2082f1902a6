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
    return suite
}
