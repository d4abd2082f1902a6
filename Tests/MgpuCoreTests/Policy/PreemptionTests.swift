@testable import MgpuCore
import Testing

/// A running preemptible job on one node's GPUs.
func victim(_ n: UInt32, on node: String = "a", gpus: [Int], priority: Double, start: Double = 0,
            stopping: Bool = false) -> PreemptibleJob {
    PreemptibleJob(id: JobID(number: n), parts: [.init(nodeId: node, gpus: gpus)], priority: priority, start: start,
                   stopping: stopping)
}

func spare(_ n: UInt32, user: String = "u", gpus: Int = 1) -> PendingJob {
    PendingJob(id: JobID(number: n), request: ResourceRequest(gpusPerNode: gpus), user: user, preemptible: true)
}

/// `--preemptible` in the policy pass: which running jobs are stopped, for whom, and where preemptible jobs start.
@Suite struct PreemptionTests {
    /// Node "a" with 4 GPUs, all held by preemptible jobs 0x81 (GPU 0, priority 0.9), 0x82 (GPU 1, 0.1) and 0x83
    /// (GPUs 2-3, 0.5).
    func fullOfPreemptible(now: Double = 0, policy: SharingPolicy = SharingPolicy(), extra: [PreemptibleJob] = [])
        -> ([NodeCapacity], PolicyContext) {
        let victims = [victim(0x81, gpus: [0], priority: 0.9), victim(0x82, gpus: [1], priority: 0.1),
                       victim(0x83, gpus: [2, 3], priority: 0.5)] + extra
        var c = context(now: now, policy: policy, running: victims.flatMap { v in
            v.parts.map { RunningPart(nodeId: $0.nodeId, gpus: $0.gpus, end: 1000) }
        })
        c.preemptible = victims
        return ([node("a", gpus: 4, busy: [0, 1, 2, 3])], c)
    }

    func victims(_ plan: Plan) -> [UInt32] { plan.preemptions.map { UInt32($0.victim.rawValue, radix: 16)! } }

    @Test func theLowestPriorityGoesFirst() {
        let (nodes, c) = fullOfPreemptible()
        let plan = Scheduler.plan(byPriority: [pending(1)], nodes: nodes, context: c)
        #expect(victims(plan) == [0x82] && plan.preemptions[0].forJob == JobID(number: 1))
        #expect(plan.assignments.isEmpty, "the job starts once its victim has stopped, at a later pass")
    }

    @Test func onlyTheJobsItNeedsAreStopped() {
        let (nodes, c) = fullOfPreemptible()
        // Two GPUs: 0x82 alone is not enough; with 0x83 it fits, and then 0x82 is not needed.
        #expect(victims(Scheduler.plan(byPriority: [pending(1, gpus: 2)], nodes: nodes, context: c)) == [0x83])
        #expect(Set(victims(Scheduler.plan(byPriority: [pending(1, gpus: 3)], nodes: nodes, context: c))) == [0x82, 0x83])
        #expect(Set(victims(Scheduler.plan(byPriority: [pending(1, gpus: 4)], nodes: nodes, context: c))) == [0x81, 0x82, 0x83])
        // Two waiting jobs, in priority order: each takes its own victims.
        let two = Scheduler.plan(byPriority: [pending(1), pending(2)], nodes: nodes, context: c)
        #expect(victims(two) == [0x82, 0x83] && two.preemptions.map(\.forJob) == [JobID(number: 1), JobID(number: 2)])
    }

    @Test func nothingIsStoppedWithoutNeed() {
        let (nodes, c) = fullOfPreemptible()
        #expect(Scheduler.plan(byPriority: [spare(1)], nodes: nodes, context: c).preemptions.isEmpty,
                "a preemptible job does not preempt")
        #expect(Scheduler.plan(byPriority: [pending(1, gpus: 5)], nodes: nodes, context: c).preemptions.isEmpty,
                "it could not start even with all of them stopped")
        var limited = SharingPolicy()
        limited.users["u"] = .init(limits: .init(maxRunning: 1))
        var held = c
        held.policy = limited
        held.holdings = ["u": Holding(gpus: 1, jobs: 1)]
        let plan = Scheduler.plan(byPriority: [pending(1)], nodes: nodes, context: held)
        #expect(plan.preemptions.isEmpty && plan.held[JobID(number: 1)] != nil, "a job over its limit stops nobody")
        // A free GPU is used first.
        let free = Scheduler.plan(byPriority: [pending(1)], nodes: [node("a", gpus: 5, busy: [0, 1, 2, 3])], context: c)
        #expect(free.preemptions.isEmpty && free.started == [1])
    }

    @Test func jobsBeingStoppedCountAsFree() {
        let (nodes, c) = fullOfPreemptible(extra: [])
        var stopping = c
        stopping.preemptible[1].stopping = true  // 0x82, for job 1 (a pass before)
        let plan = Scheduler.plan(byPriority: [pending(1), spare(9)], nodes: nodes, context: stopping)
        #expect(plan.preemptions.isEmpty, "0x82's GPU will do")
        #expect(plan.assignments.isEmpty, "and no preemptible job starts while one is being stopped")
        let next = Scheduler.plan(byPriority: [pending(1), pending(2)], nodes: nodes, context: stopping)
        #expect(victims(next) == [0x83], "the second waiting job needs another")
    }

    @Test func preemptibleJobsComeLastPastLimitsAndOnReservedGPUs() {
        var policy = SharingPolicy()
        policy.users["u"] = .init(limits: .init(maxGPUs: 1))
        // Two GPUs free on "a", "b" busy until 100; job 1 needs both nodes whole: it reserves them.
        let nodes = [node("a", gpus: 2), node("b", gpus: 2, busy: [0, 1])]
        let running = [RunningPart(nodeId: "b", gpus: [0, 1], end: 100)]
        let c = context(policy: policy, running: running, holdings: ["u": Holding(gpus: 1, jobs: 1)])
        let plan = Scheduler.plan(byPriority: [spare(5), pending(1, user: "v", gpus: 2, nodes: 2), pending(2, limit: 10), spare(6)],
                                  nodes: nodes, context: c)
        #expect(plan.held[JobID(number: 2)] != nil, "u's normal job is over its limit")
        #expect(plan.started == [5, 6], "preemptible jobs: after the others, past u's limit, on the reserved GPUs")
        #expect(plan.reservation?.job == JobID(number: 1))
    }

    /// A job that its limits would hold once it could start (counting the reserved job of the same user) stops
    /// nobody: else the victim would be stopped, the job held, the victim started again, and so on.
    @Test func aJobItsLimitsWouldHoldStopsNobody() {
        var policy = SharingPolicy()
        policy.users["u"] = .init(limits: .init(maxGPUs: 2))
        let nodes = [node("a", gpus: 3, busy: [0, 1, 2])]
        var c = context(policy: policy, running: [RunningPart(nodeId: "a", gpus: [0, 1], end: 100), RunningPart(nodeId: "a", gpus: [2], end: 5000)])
        c.preemptible = [victim(0x81, gpus: [2], priority: 0.1)]
        let plan = Scheduler.plan(byPriority: [pending(1, gpus: 2), pending(2, limit: 1000)], nodes: nodes, context: c)
        #expect(plan.reservation?.job == JobID(number: 1))
        #expect(plan.preemptions.isEmpty)
        #expect(plan.held[JobID(number: 2)]?.hasSuffix("counting job 00000001, which has the reservation") == true)
    }

    /// However a stopped job exits (one that checkpoints on SIGTERM exits 0), it goes back to the queue, unless it was
    /// cancelled meanwhile or ran out of time.
    @Test func aStoppedJobIsRequeuedHoweverItExits() {
        func stopped(_ exit: MgpuCore.ExitStatus, cancelled: Bool = false) -> Job {
            var job = makeJob(7)
            try? job.transition(to: .running, at: 10)
            job.parts = [JobPart(rank: 0, nodeId: "a", gpus: [0], exit: exit, deliveredTo: "i1")]
            job.preemptedBy = JobID(number: 1)
            job.cancelRequested = cancelled
            return Reconciler.finalize([job], now: 20).changed[0]
        }
        for exit in [MgpuCore.ExitStatus(code: 0), MgpuCore.ExitStatus(signal: 15), MgpuCore.ExitStatus(code: 143)] {
            let job = stopped(exit)
            #expect(job.state == .pending && job.history?.map(\.state) == ["PREEMPTED"] && job.preemptedBy == nil, "\(exit.summary)")
        }
        #expect(stopped(MgpuCore.ExitStatus(signal: 15), cancelled: true).state == .cancelled)
        #expect(stopped(MgpuCore.ExitStatus(signal: 15, timedOut: true)).state == .timeout)
    }

    @Test func aMultiNodeVictimFreesAllItsNodes() {
        let big = PreemptibleJob(id: JobID(number: 0x90), parts: [.init(nodeId: "a", gpus: [0, 1]), .init(nodeId: "b", gpus: [0, 1])],
                                 priority: 0.2, start: 0)
        var c = context(running: [RunningPart(nodeId: "a", gpus: [0, 1], end: 50), RunningPart(nodeId: "b", gpus: [0, 1], end: 50)])
        c.preemptible = [big]
        let nodes = [node("a", gpus: 2, busy: [0, 1]), node("b", gpus: 2, busy: [0, 1])]
        let plan = Scheduler.plan(byPriority: [pending(1, gpus: 2, nodes: 2)], nodes: nodes, context: c)
        #expect(victims(plan) == [0x90])
    }

    @Test func aLaterJobLeavesTheReservedGPUsAlone() {
        // "a": GPUs 0-1 run a normal job until 100; GPUs 2-3 a preemptible one. "b": 2 GPUs, a preemptible job.
        // Job 1 (4 GPUs, one node) reserves "a" at 100, or "b"... b has 2 GPUs: only "a" fits it.
        let nodes = [node("a", gpus: 4, busy: [0, 1, 2, 3]), node("b", gpus: 2, busy: [0, 1])]
        var c = context(running: [RunningPart(nodeId: "a", gpus: [0, 1], end: 100), RunningPart(nodeId: "a", gpus: [2, 3], end: 500),
                                  RunningPart(nodeId: "b", gpus: [0, 1], end: 500)])
        c.preemptible = [victim(0x81, on: "a", gpus: [2, 3], priority: 0.1), victim(0x82, on: "b", gpus: [0, 1], priority: 0.5)]
        // Job 2 would run past the reservation: it may not stop 0x81 (on job 1's GPUs), so it stops 0x82.
        let plan = Scheduler.plan(byPriority: [pending(1, gpus: 4), pending(2, gpus: 2, limit: 1000)], nodes: nodes, context: c)
        #expect(plan.reservation?.job == JobID(number: 1))
        #expect(plan.preemptions.map(\.forJob) == [JobID(number: 2)] && victims(plan) == [0x82])
        // One that ends before the reservation may take the lowest-priority one.
        let short = Scheduler.plan(byPriority: [pending(1, gpus: 4), pending(2, gpus: 2, limit: 50)], nodes: nodes, context: c)
        #expect(victims(short) == [0x81])
    }
}

@Suite struct RandomizedPreemptionTests {
    /// Random clusters of normal and preemptible running jobs and a random queue of both: only running preemptible
    /// jobs not being stopped are stopped, each once, for a waiting job that is not preemptible and that then fits
    /// on what is free plus what is being stopped; nothing preemptible starts while anything is being stopped; no GPU
    /// is given twice.
    @Test(arguments: 0..<300)
    func invariantsHold(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed) &+ 1409)
        var nodes: [NodeCapacity] = []
        var running: [RunningPart] = []
        var victims: [PreemptibleJob] = []
        var next: UInt32 = 0x1000
        for i in 0..<Int.random(in: 1...4, using: &rng) {
            let count = Int.random(in: 1...8, using: &rng)
            var n = node("n\(i)", gpus: count)
            for g in 0..<count where Int.random(in: 0..<3, using: &rng) > 0 {
                n.busyGPUs.insert(g)
                running.append(RunningPart(nodeId: n.id, gpus: [g], end: Double(Int.random(in: 1...1000, using: &rng))))
                if Bool.random(using: &rng) {
                    next += 1
                    victims.append(victim(next, on: n.id, gpus: [g], priority: Double.random(in: 0...1, using: &rng),
                                          stopping: Int.random(in: 0..<6, using: &rng) == 0))
                }
            }
            nodes.append(n)
        }
        var c = context(running: running)
        c.preemptible = victims
        let queue = (1...UInt32.random(in: 1...12, using: &rng)).map { n in
            var job = pending(n, gpus: Int.random(in: 1...4, using: &rng), limit: Double(Int.random(in: 10...2000, using: &rng)))
            job.preemptible = Int.random(in: 0..<3, using: &rng) == 0
            return job
        }
        let plan = Scheduler.plan(byPriority: queue, nodes: nodes, context: c)
        var taken = Set<String>()
        for a in plan.assignments {
            for p in a.parts {
                for g in p.gpus {
                    #expect(!nodes.first { $0.id == p.nodeId }!.busyGPUs.contains(g), "seed \(seed): busy GPU given")
                    #expect(taken.insert("\(p.nodeId):\(g)").inserted, "seed \(seed): GPU given twice")
                }
            }
        }
        let stopped = plan.preemptions.map(\.victim)
        #expect(Set(stopped).count == stopped.count, "seed \(seed): a job stopped twice")
        for p in plan.preemptions {
            #expect(victims.contains { $0.id == p.victim && !$0.stopping }, "seed \(seed): \(p.victim) is no running preemptible job")
            let job = queue.first { $0.id == p.forJob }
            #expect(job?.preemptible == false && !plan.assignments.contains { $0.job == p.forJob }, "seed \(seed)")
        }
        if !plan.preemptions.isEmpty || victims.contains(where: \.stopping) {
            #expect(!plan.assignments.contains { a in queue.first { $0.id == a.job }!.preemptible }, "seed \(seed)")
        }
        // Each job something was stopped for fits on the GPUs free after the pass, plus those being stopped or stopped now.
        var state = PassState(nodes: nodes)
        for a in plan.assignments { for p in a.parts { state.take(state.index[p.nodeId]!, gpus: p.gpus) } }
        for forJob in Set(plan.preemptions.map(\.forJob)) {
            let job = queue.first { $0.id == forJob }!
            var free = state.nodes.indices.map { Set(state.nodes[$0].gpus).subtracting(state.nodes[$0].busyGPUs) }
            for v in victims where v.stopping || stopped.contains(v.id) {
                for p in v.parts { free[state.index[p.nodeId]!].formUnion(p.gpus) }
            }
            #expect(state.fit(job.request, free: free) != nil, "seed \(seed): \(forJob) would not fit after its preemptions")
        }
        // With no waiting job that is not preemptible, nothing is stopped.
        let onlySpare = Scheduler.plan(byPriority: queue.filter(\.preemptible), nodes: nodes, context: c)
        #expect(onlySpare.preemptions.isEmpty)
    }
}
