#if canImport(Glibc)
import Glibc
#endif
@testable import MgpuCore
import Testing

/// A pending job for the policy pass.
func pending(_ n: UInt32, user: String = "u", gpus: Int = 1, nodes: Int = 1, limit: Double? = nil) -> PendingJob {
    PendingJob(id: JobID(number: n), request: ResourceRequest(gpusPerNode: gpus, nodes: nodes), user: user, timeLimit: limit)
}

func context(now: Double = 0, policy: SharingPolicy = SharingPolicy(), running: [RunningPart] = [],
             holdings: [String: Holding] = [:]) -> PolicyContext {
    PolicyContext(now: now, policy: policy, running: running, holdings: holdings)
}

@Suite struct FairShareTests {
    @Test func aUserWhoUsedNothingHasFactorOne() {
        let f = FairShare.factors(users: ["a", "b"], usage: ["a": 100], policy: SharingPolicy())
        #expect(f["b"] == 1)
        #expect(f["a"]! < 0.26 && f["a"]! > 0.24, "a used it all with half the shares: 2^-2")
    }

    @Test func sharesAndAccountsSplitTheCluster() {
        var policy = SharingPolicy()
        policy.accounts = ["big": .init(shares: 3), "small": .init(shares: 1)]
        policy.users = ["a": .init(account: "big"), "b": .init(account: "small"), "c": .init(account: "small")]
        // Equal usage; a's account has 3/4 of the shares, b and c split 1/4.
        let f = FairShare.factors(users: ["a", "b", "c"], usage: ["a": 10, "b": 10, "c": 10], policy: policy)
        #expect(f["a"]! > f["b"]! && f["b"] == f["c"])
        #expect(abs(f["a"]! - exp2(-(1.0 / 3) / 0.75)) < 1e-9)
        #expect(abs(f["b"]! - exp2(-(1.0 / 3) / 0.125)) < 1e-9)
    }

    @Test func ageWinsInTheEndWhateverTheFactor() {
        let policy = SharingPolicy()
        let heavyOld = FairShare.priority(factor: 0.01, submitTime: 0, nice: 0, now: 2 * policy.ageScale, policy: policy)
        let lightNew = FairShare.priority(factor: 1, submitTime: 2 * policy.ageScale, nice: 0, now: 2 * policy.ageScale, policy: policy)
        #expect(heavyOld.value > lightNew.value, "a job that waited twice the age scale outranks a newcomer of a user with no usage")
        let lightOlder = FairShare.priority(factor: 1, submitTime: policy.ageScale / 2, nice: 0, now: policy.ageScale, policy: policy)
        let heavyOlder = FairShare.priority(factor: 0.1, submitTime: 0, nice: 0, now: policy.ageScale, policy: policy)
        #expect(lightOlder.value > heavyOlder.value, "half an age scale younger, but a far better factor")
        #expect(FairShare.priority(factor: 1, submitTime: 0, nice: 500, now: 0, policy: policy).value == 0.5)
    }

    @Test func usageDecaysWithItsHalfLife() {
        var u = Usage()
        u.add(100, at: 0, halfLife: 10)
        #expect(abs(u.decayed(to: 10, halfLife: 10) - 50) < 1e-9)
        u.add(50, at: 10, halfLife: 10)
        #expect(abs(u.decayed(to: 20, halfLife: 10) - 50) < 1e-9)
    }
}

@Suite struct PolicyPassTests {
    @Test func jobsStartInTheOrderGiven() {
        let plan = Scheduler.plan(byPriority: [pending(2), pending(1), pending(3)], nodes: [node("a", gpus: 2)], context: context())
        #expect(plan.started == [2, 1])
        #expect(plan.reservation?.job == JobID(number: 3), "the first that waits gets the reservation")
    }

    @Test func limitsHoldJobsAndSayWhich() {
        var policy = SharingPolicy()
        policy.users = ["alice": .init(limits: .init(maxGPUs: 2)), "bob": .init(limits: .init(maxRunning: 1))]
        policy.accounts = ["lab": .init(limits: .init(maxGPUs: 3))]
        policy.users["carol"] = .init(account: "lab")
        policy.users["dave"] = .init(account: "lab")
        let plan = Scheduler.plan(byPriority: [pending(1, user: "alice", gpus: 2), pending(2, user: "alice"), pending(3, user: "bob"),
                                               pending(4, user: "bob"), pending(5, user: "carol", gpus: 2), pending(6, user: "dave", gpus: 2)],
                                  nodes: [node("a", gpus: 8), node("b", gpus: 8)], context: context(policy: policy))
        #expect(plan.started == [1, 3, 5])
        #expect(plan.held[JobID(number: 2)] == "alice uses 2 of their 2 GPUs (limit)")
        #expect(plan.held[JobID(number: 4)] == "bob runs 1 of their 1 jobs (limit)")
        #expect(plan.held[JobID(number: 6)] == "account lab uses 2 of its 3 GPUs (limit)")
        #expect(plan.reservation == nil, "a job held by a limit reserves nothing")
    }

    @Test func limitsCountWhatRunsAlready() {
        var policy = SharingPolicy()
        policy.users = ["alice": .init(limits: .init(maxGPUs: 4))]
        let plan = Scheduler.plan(byPriority: [pending(1, user: "alice", gpus: 2)], nodes: [node("a", gpus: 8, busy: [0, 1, 2])],
                                  context: context(policy: policy, holdings: ["alice": Holding(gpus: 3, jobs: 1)]))
        #expect(plan.started.isEmpty && plan.held[JobID(number: 1)] == "alice uses 3 of their 4 GPUs (limit)")
    }

    /// EASY backfill: the top job waits for 4 GPUs of node a, 2 of which free up at t=100. A job that ends before
    /// then may use the 2 free ones; one that would run longer may not; one that fits elsewhere may.
    @Test func backfillThatMustAndMustNotHappen() {
        let nodes = [node("a", gpus: 4, busy: [2, 3]), node("b", gpus: 2, busy: [0])]
        let running = [RunningPart(nodeId: "a", gpus: [2, 3], end: 100), RunningPart(nodeId: "b", gpus: [0], end: 500)]
        let plan = Scheduler.plan(byPriority: [pending(1, gpus: 4), pending(2, limit: 200), pending(3, limit: 50), pending(4, limit: 1000)],
                                  nodes: nodes, context: context(running: running))
        #expect(plan.reservation == .init(job: JobID(number: 1), start: 100))
        #expect(plan.placement(3) == [.init(nodeId: "a", gpus: [0])], "ends at 50, before the reservation")
        #expect(plan.placement(2) == [.init(nodeId: "b", gpus: [1])], "too long for node a, but b has a GPU nobody reserved")
        #expect(plan.placement(4) == nil, "nothing left but reserved GPUs, and it ends after 100")
    }

    @Test func jobsWithoutATimeLimitBackfillByTheDefault() {
        var policy = SharingPolicy()
        policy.defaultTime = 60
        let nodes = [node("a", gpus: 2, busy: [1])]
        let plan = Scheduler.plan(byPriority: [pending(1, gpus: 2), pending(2)], nodes: nodes,
                                  context: context(policy: policy, running: [RunningPart(nodeId: "a", gpus: [1], end: 100)]))
        #expect(plan.started == [2], "its default limit (60 s) ends before the reservation (100 s)")
        policy.defaultTime = 600
        let later = Scheduler.plan(byPriority: [pending(1, gpus: 2), pending(2)], nodes: nodes,
                                   context: context(policy: policy, running: [RunningPart(nodeId: "a", gpus: [1], end: 100)]))
        #expect(later.started.isEmpty)
    }

    /// A two-node job's reservation is on both nodes, at the time the later of them frees up.
    @Test func multiNodeReservation() {
        let nodes = [node("a", gpus: 2, busy: [0, 1]), node("b", gpus: 2, busy: [0]), node("c", gpus: 2, busy: [0, 1])]
        let running = [RunningPart(nodeId: "a", gpus: [0, 1], end: 300), RunningPart(nodeId: "b", gpus: [0], end: 100),
                       RunningPart(nodeId: "c", gpus: [0, 1], end: 200)]
        let plan = Scheduler.plan(byPriority: [pending(1, gpus: 2, nodes: 2), pending(2, limit: 150), pending(3, limit: 250)],
                                  nodes: nodes, context: context(running: running))
        #expect(plan.reservation == .init(job: JobID(number: 1), start: 200), "b at 100 and c at 200")
        #expect(plan.started == [2], "b's free GPU is reserved: only a job that ends by 200 may use it")
    }

    /// alice's top job waits for node a; her later job would fit on b now, but it would still run when the reservation
    /// starts, and then the two would be over her 5-GPU limit: it waits, so the reserved job can start on time.
    @Test func aBackfilledJobCannotPushTheReservedJobOverItsLimit() {
        var policy = SharingPolicy()
        policy.users = ["alice": .init(limits: .init(maxGPUs: 5))]
        let nodes = [node("a", gpus: 4, busy: [0, 1, 2]), node("b", gpus: 2)]
        let running = [RunningPart(nodeId: "a", gpus: [0, 1, 2], end: 100)]
        let queue = [pending(1, user: "alice", gpus: 4), pending(2, user: "alice", gpus: 2, limit: 1000), pending(3, user: "alice", limit: 50)]
        let plan = Scheduler.plan(byPriority: queue, nodes: nodes, context: context(policy: policy, running: running))
        #expect(plan.reservation == .init(job: JobID(number: 1), start: 100))
        #expect(plan.held[JobID(number: 2)] == "alice uses 4 of their 5 GPUs (limit), counting job 00000001, which has the reservation")
        #expect(plan.started == [3], "one that ends before the reservation does not count it")
    }

    @Test func backfillLeavesSlackForTheKillGraceAndAReport() {
        let nodes = [node("a", gpus: 2, busy: [1])]
        let running = [RunningPart(nodeId: "a", gpus: [1], end: 100)]
        var ctx = context(running: running)
        ctx.slack = 15
        #expect(Scheduler.plan(byPriority: [pending(1, gpus: 2), pending(2, limit: 90)], nodes: nodes, context: ctx).started.isEmpty,
                "ends at 90, but may hold its GPU until 105")
        #expect(Scheduler.plan(byPriority: [pending(1, gpus: 2), pending(2, limit: 85)], nodes: nodes, context: ctx).started == [2])
    }

    @Test func withoutADefaultTimeJobsWithoutALimitNeverTakeReservedGPUs() {
        var policy = SharingPolicy()
        policy.defaultTime = nil
        // The running job has no limit either: the reservation's start is unknown (infinite).
        let nodes = [node("a", gpus: 2, busy: [1])]
        let running = [RunningPart(nodeId: "a", gpus: [1], end: .infinity)]
        let plan = Scheduler.plan(byPriority: [pending(1, gpus: 2), pending(2), pending(3, limit: 60)], nodes: nodes,
                                  context: context(policy: policy, running: running))
        #expect(plan.reservation?.job == JobID(number: 1))
        #expect(plan.started == [3], "only a job with a limit is sure to end before it")
    }

    @Test func aJobLargerThanItsLimitSaysSo() {
        var policy = SharingPolicy()
        policy.users = ["alice": .init(limits: .init(maxGPUs: 2))]
        let plan = Scheduler.plan(byPriority: [pending(1, user: "alice", gpus: 4)], nodes: [node("a", gpus: 8)], context: context(policy: policy))
        #expect(plan.held[JobID(number: 1)] == "it needs 4 GPUs, over alice's limit of 2: it waits until an admin raises the limit")
    }

    @Test func aRequestThatCannotFitEvenWhenAllEndsReservesNothing() {
        let plan = Scheduler.plan(byPriority: [pending(1, gpus: 4), pending(2)], nodes: [node("a", gpus: 2)], context: context())
        #expect(plan.reservation == nil && plan.started == [2])
    }
}

/// Random clusters, queues, running parts and limits: the policy pass never hands out a busy or twice-given GPU, never
/// starts part of a gang job, never starts a held job, and nothing it starts on a reserved GPU outlives the reservation.
@Suite struct RandomizedPolicyTests {
    @Test(arguments: 0..<300)
    func invariantsHold(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed) &+ 77)
        let nodes = (0..<Int.random(in: 1...5, using: &rng)).map { i -> NodeCapacity in
            let count = Int.random(in: 1...8, using: &rng)
            return node("n\(i)", gpus: count, busy: Set((0..<count).filter { _ in Bool.random(using: &rng) }),
                        up: Int.random(in: 0..<6, using: &rng) > 0)
        }
        let running = nodes.flatMap { n in n.busyGPUs.map { RunningPart(nodeId: n.id, gpus: [$0], end: Double(Int.random(in: 1...1000, using: &rng))) } }
        var policy = SharingPolicy()
        policy.defaultTime = Double(Int.random(in: 10...2000, using: &rng))
        policy.users["u1"] = .init(limits: .init(maxGPUs: Int.random(in: 1...6, using: &rng), maxRunning: Int.random(in: 1...4, using: &rng)))
        let queue = (1...UInt32.random(in: 1...25, using: &rng)).map { n in
            pending(n, user: "u\(Int.random(in: 0...2, using: &rng))", gpus: Int.random(in: 1...4, using: &rng),
                    nodes: Int.random(in: 0..<5, using: &rng) == 0 ? 2 : 1,
                    limit: Bool.random(using: &rng) ? Double(Int.random(in: 10...2000, using: &rng)) : nil)
        }
        let plan = Scheduler.plan(byPriority: queue, nodes: nodes, context: context(policy: policy, running: running))
        var taken = Set<String>()
        var u1 = Holding()
        for assignment in plan.assignments {
            let job = queue.first { $0.id == assignment.job }!
            #expect(assignment.parts.count == job.request.nodes, "seed \(seed): a gang job started whole")
            #expect(Set(assignment.parts.map(\.nodeId)).count == assignment.parts.count)
            #expect(plan.held[job.id] == nil)
            for part in assignment.parts {
                let n = nodes.first { $0.id == part.nodeId }!
                #expect(n.schedulable && part.gpus.count == job.request.gpusPerNode)
                for g in part.gpus {
                    #expect(!n.busyGPUs.contains(g), "seed \(seed): busy GPU \(part.nodeId):\(g) handed out")
                    #expect(taken.insert("\(part.nodeId):\(g)").inserted, "seed \(seed): \(part.nodeId):\(g) given twice")
                }
            }
            if job.user == "u1" { u1.gpus += job.request.totalGPUs; u1.jobs += 1 }
        }
        let limits = policy.users["u1"]!.limits
        #expect(u1.gpus <= limits.maxGPUs! && u1.jobs <= limits.maxRunning!, "seed \(seed): u1's limits held")
        // Whatever started on GPUs the reservation needs ends before it starts.
        if let reservation = plan.reservation {
            let top = queue.first { $0.id == reservation.job }!
            #expect(plan.assignments.allSatisfy { $0.job != top.id })
            var state = PassState(nodes: nodes)
            state.reserveWhenWaiting = false
            let ends = running + plan.assignments.flatMap { a in
                let job = queue.first { $0.id == a.job }!
                return a.parts.map { RunningPart(nodeId: $0.nodeId, gpus: $0.gpus, end: policy.timeLimit(job.timeLimit)) }
            }
            let late = plan.assignments.filter { a in policy.timeLimit(queue.first { $0.id == a.job }!.timeLimit) > reservation.start }
            var withLate = state
            for a in late { for p in a.parts { if let n = withLate.index[p.nodeId] { withLate.take(n, gpus: p.gpus) } } }
            let early = ends.filter { e in !late.contains { a in a.parts.contains { $0.nodeId == e.nodeId && $0.gpus == e.gpus } } }
            let shadow = withLate.shadowFor(top.request, ends: early.sorted { $0.end < $1.end }, now: 0)
            #expect(shadow != nil && shadow!.0 <= reservation.start + 1e-9,
                    "seed \(seed): the jobs that outlive the reservation left it in place (\(shadow.map { "\($0.0)" } ?? "never") vs \(reservation.start))")
        }
    }
}

/// The master skips a pass when `Scheduler.mayStartAnything` says no: random clusters with no free GPU on a node that
/// is up (CPU slots free or not) and random queues, GPU and CPU-only jobs: where the check says no, neither pass starts
/// anything; with a running preemptible job it says yes (a preemption could make room); one free GPU says yes.
@Suite struct SkippedPassTests {
    @Test(arguments: 0..<300)
    func aPassSkippedWouldHaveStartedNothing(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed) &+ 4242)
        let nodes = (0..<Int.random(in: 1...5, using: &rng)).map { i -> NodeCapacity in
            let count = Int.random(in: 0...8, using: &rng)
            let up = Int.random(in: 0..<4, using: &rng) > 0
            let slots = Int.random(in: 0...3, using: &rng)
            // A node that is up has every GPU busy; one that is down may have anything free.
            let busy = up ? Set(0..<count) : Set((0..<count).filter { _ in Bool.random(using: &rng) })
            return node("n\(i)", gpus: count, busy: busy, up: up, slots: slots, slotsUsed: Int.random(in: 0...slots, using: &rng))
        }
        let cpuJobs = Bool.random(using: &rng)
        let queue = (1...UInt32.random(in: 1...25, using: &rng)).map { n in
            pending(n, user: "u\(Int.random(in: 0...2, using: &rng))",
                    gpus: cpuJobs && Bool.random(using: &rng) ? 0 : Int.random(in: 1...4, using: &rng))
        }
        let cpuOnly = queue.filter { $0.request.isCPUOnly }.count
        let slotFree = nodes.contains { $0.schedulable && $0.cpuSlotsUsed < $0.cpuSlots }
        let may = Scheduler.mayStartAnything(nodes: nodes, cpuOnlyPending: cpuOnly, preemptibleRunning: false)
        #expect(may == (cpuOnly > 0 && slotFree), "seed \(seed)")
        #expect(Scheduler.mayStartAnything(nodes: nodes, cpuOnlyPending: cpuOnly, preemptibleRunning: true))
        if !may {
            #expect(Scheduler.plan(queue: queue, nodes: nodes).assignments.isEmpty, "seed \(seed)")
            #expect(Scheduler.plan(byPriority: queue, nodes: nodes, context: context()).assignments.isEmpty, "seed \(seed)")
        }
        // One free GPU on a node that is up, and the check says a pass may start something.
        if let i = nodes.firstIndex(where: { !$0.gpus.isEmpty }) {
            var roomy = nodes
            roomy[i].schedulable = true
            roomy[i].busyGPUs.remove(roomy[i].gpus[0])
            #expect(Scheduler.mayStartAnything(nodes: roomy, cpuOnlyPending: cpuOnly, preemptibleRunning: false), "seed \(seed)")
        }
    }
}
