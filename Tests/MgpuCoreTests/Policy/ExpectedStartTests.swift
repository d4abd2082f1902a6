@testable import MgpuCore
import Testing

/// Expected starts for every waiting job (`squeue --start`), from the policy pass's inputs.
@Suite struct ExpectedStartTests {
    func id(_ n: UInt32) -> JobID { JobID(number: n) }

    @Test func eachJobPlansAroundTheOnesBeforeIt() {
        // GPU 0 free at 100, GPU 1 at 200.
        let nodes = [node("a", gpus: 2, busy: [0, 1])]
        let running = [RunningPart(nodeId: "a", gpus: [0], end: 100), RunningPart(nodeId: "a", gpus: [1], end: 200)]
        let queue = [pending(1, limit: 50), pending(2, limit: 1000), pending(3, gpus: 2, limit: 10), pending(4, limit: 10)]
        let starts = Scheduler.expectedStarts(queue: queue, nodes: nodes, running: running, now: 0, policy: SharingPolicy())
        #expect(starts[id(1)] == 100, "GPU 0 frees at 100; it holds it until 150")
        #expect(starts[id(2)] == 150, "then GPU 0 again, until 1150")
        #expect(starts[id(3)] == 1150, "both GPUs: GPU 1 at 200, GPU 0 at 1150")
        #expect(starts[id(4)] == 200, "a later job that fits earlier starts earlier: GPU 1 at 200")
    }

    @Test func whatGetsNoEstimate() {
        let nodes = [node("a", gpus: 2, busy: [0])]
        let running = [RunningPart(nodeId: "a", gpus: [0], end: 100)]
        let cpu = PendingJob(id: id(5), request: ResourceRequest(gpusPerNode: 0), user: "u")
        let queue = [pending(1, gpus: 3), pending(2), cpu, pending(3), pending(4)]
        let starts = Scheduler.expectedStarts(queue: queue, nodes: nodes, running: running, skip: [id(3)], now: 10,
                                              policy: SharingPolicy())
        #expect(starts[id(1)] == nil, "it never fits")
        #expect(starts[id(2)] == 10, "GPU 1 is free now")
        #expect(starts[id(3)] == nil && starts[id(5)] == nil, "held by a limit; needs no GPU")
        #expect(starts[id(4)] == 100)
        #expect(Scheduler.expectedStarts(queue: queue, nodes: nodes, running: running, now: 10, policy: SharingPolicy(),
                                         depth: 2)[id(3)] == nil, "only the first jobs are looked at")
    }

    @Test func preemptibleGPUsAreFreeNowForOthers() {
        let nodes = [node("a", gpus: 1, busy: [0])]
        let running = [RunningPart(nodeId: "a", gpus: [0], end: 500)]
        var spareJob = pending(2)
        spareJob.preemptible = true
        let starts = Scheduler.expectedStarts(queue: [spareJob, pending(1, limit: 60)], nodes: nodes, running: running,
                                              preemptible: [.init(nodeId: "a", gpus: [0])], now: 0, policy: SharingPolicy())
        #expect(starts[id(1)] == 0, "it would stop the preemptible job now")
        #expect(starts[id(2)] == 500, "a preemptible job waits for the running one to end")
    }

    /// The reserved job's expected start is its reservation: one computation.
    @Test(arguments: 0..<200)
    func theReservedJobsEstimateIsItsReservation(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed) &+ 5150)
        let nodes = (0..<Int.random(in: 1...4, using: &rng)).map { i -> NodeCapacity in
            let count = Int.random(in: 1...8, using: &rng)
            return node("n\(i)", gpus: count, busy: Set((0..<count).filter { _ in Bool.random(using: &rng) }))
        }
        let running = nodes.flatMap { n in n.busyGPUs.map { RunningPart(nodeId: n.id, gpus: [$0], end: Double(Int.random(in: 1...1000, using: &rng))) } }
        var policy = SharingPolicy()
        policy.users["u1"] = .init(limits: .init(maxGPUs: Int.random(in: 1...6, using: &rng)))
        let queue = (1...UInt32.random(in: 1...20, using: &rng)).map { n in
            pending(n, user: "u\(Int.random(in: 0...2, using: &rng))", gpus: Int.random(in: 1...4, using: &rng),
                    nodes: Int.random(in: 0..<5, using: &rng) == 0 ? 2 : 1, limit: Double(Int.random(in: 10...2000, using: &rng)))
        }
        let plan = Scheduler.plan(byPriority: queue, nodes: nodes, context: context(now: 0, policy: policy, running: running))
        let limits = Dictionary(uniqueKeysWithValues: queue.map { ($0.id, $0.timeLimit!) })
        let starts = Scheduler.expectedStarts(queue: queue, nodes: nodes, running: running,
                                              started: plan.assignments.map { ($0, limits[$0.job]!) },
                                              skip: Set(plan.held.keys).union(plan.assignments.map(\.job)), now: 0, policy: policy)
        if let reservation = plan.reservation {
            #expect(starts[reservation.job] == reservation.start, "seed \(seed)")
        }
        for (job, start) in starts { #expect(start >= 0 && !plan.assignments.contains { $0.job == job }, "seed \(seed)") }
    }
}
