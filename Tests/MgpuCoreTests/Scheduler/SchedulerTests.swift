@testable import MgpuCore
import Testing

@Suite struct AllocationTests {
    @Test func concurrentJobsGetDistinctGPUs() {
        let plan = Scheduler.plan(pending: (1...4).map { makeJob($0) }, nodes: [node("a", gpus: 2), node("b", gpus: 2)])
        let taken = plan.assignments.flatMap { $0.parts.flatMap { p in p.gpus.map { "\(p.nodeId):\($0)" } } }
        #expect(plan.assignments.count == 4)
        #expect(Set(taken).count == 4)
    }

    @Test func jobsBeyondCapacityWait() {
        let plan = Scheduler.plan(pending: (1...5).map { makeJob($0) }, nodes: [node("a", gpus: 2), node("b", gpus: 2)])
        #expect(plan.started == [1, 2, 3, 4])
    }

    @Test func busyGPUsAreNeverHandedOut() {
        let plan = Scheduler.plan(pending: [makeJob(1), makeJob(2)], nodes: [node("a", gpus: 2, busy: [0])])
        #expect(plan.placement(1) == [.init(nodeId: "a", gpus: [1])])
        #expect(plan.placement(2) == nil)
    }

    @Test func multiGPUJobStaysOnOneNode() {
        // 2 free on a, 2 free on b: a 3-GPU job cannot start although 4 are free in all.
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 3)], nodes: [node("a", gpus: 4, busy: [0, 1]), node("b", gpus: 4, busy: [2, 3])])
        #expect(plan.assignments.isEmpty)
        let plan2 = Scheduler.plan(pending: [makeJob(1, gpus: 3)], nodes: [node("a", gpus: 4, busy: [0]), node("b", gpus: 4, busy: [2, 3])])
        #expect(plan2.placement(1) == [.init(nodeId: "a", gpus: [1, 2, 3])])
    }

    @Test func tightestFitKeepsBigNodesFree() {
        let plan = Scheduler.plan(pending: [makeJob(1)], nodes: [node("big", gpus: 8), node("small", gpus: 2, busy: [0])])
        #expect(plan.placement(1) == [.init(nodeId: "small", gpus: [1])])
    }

    @Test func lowestFreeIndicesFirst() {
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 2)], nodes: [node("a", gpus: 4, busy: [1])])
        #expect(plan.placement(1) == [.init(nodeId: "a", gpus: [0, 2])])
    }

    @Test func downNodesGetNothing() {
        let plan = Scheduler.plan(pending: [makeJob(1), makeJob(2, gpus: 0)], nodes: [node("a", gpus: 2, up: false)])
        #expect(plan.assignments.isEmpty)
    }

    @Test func cancelledOrNonPendingJobsAreSkipped() {
        var cancelled = makeJob(1)
        cancelled.cancelRequested = true
        var running = makeJob(2)
        running.state = .running
        let plan = Scheduler.plan(pending: [cancelled, running, makeJob(3)], nodes: [node("a", gpus: 1)])
        #expect(plan.started == [3])
    }
}

@Suite struct PinningTests {
    @Test func pinnedJobGetsExactlyItsGPUs() {
        let pin = [PinnedGPUs(nodeId: "b", gpus: [1, 3])]
        let plan = Scheduler.plan(pending: [makeJob(1, pinned: pin)], nodes: [node("a", gpus: 4), node("b", gpus: 4)])
        #expect(plan.placement(1) == [.init(nodeId: "b", gpus: [1, 3])])
    }

    @Test func pinnedJobWaitsForExactlyThoseGPUs() {
        let pin = [PinnedGPUs(nodeId: "a", gpus: [0])]
        let plan = Scheduler.plan(pending: [makeJob(1, pinned: pin)], nodes: [node("a", gpus: 4, busy: [0])])
        #expect(plan.assignments.isEmpty)
    }

    @Test func multiNodePinnedJobStartsOnlyWhenAllPinsAreFree() {
        let pin = [PinnedGPUs(nodeId: "a", gpus: [0, 1]), PinnedGPUs(nodeId: "b", gpus: [0])]
        let blocked = Scheduler.plan(pending: [makeJob(1, pinned: pin)], nodes: [node("a", gpus: 2), node("b", gpus: 1, busy: [0])])
        #expect(blocked.assignments.isEmpty)
        let free = Scheduler.plan(pending: [makeJob(1, pinned: pin)], nodes: [node("a", gpus: 2), node("b", gpus: 1)])
        #expect(free.placement(1) == [.init(nodeId: "a", gpus: [0, 1]), .init(nodeId: "b", gpus: [0])])
    }

    @Test func waitingPinnedJobReservesItsFreePinsButNothingElse() {
        // Job 1 waits for a:0 (busy) and a:1 (free). Job 2 (any GPU) must not take a:1, but may take a:2.
        let pin = [PinnedGPUs(nodeId: "a", gpus: [0, 1])]
        let plan = Scheduler.plan(pending: [makeJob(1, pinned: pin), makeJob(2), makeJob(3)],
                                  nodes: [node("a", gpus: 3, busy: [0])])
        #expect(plan.placement(1) == nil)
        #expect(plan.placement(2) == [.init(nodeId: "a", gpus: [2])])
        #expect(plan.placement(3) == nil)
    }
}

@Suite struct OrderTests {
    @Test func firstComeFirstServed() {
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 2), makeJob(2, gpus: 2)], nodes: [node("a", gpus: 2)])
        #expect(plan.started == [1])
    }

    @Test func blockedJobKeepsTheGPUsItWaitsFor() {
        // a has 1 free of 4: job 1 (4 GPUs) waits for a and reserves its free GPU; job 2 (1 GPU) must not take it.
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 4), makeJob(2)], nodes: [node("a", gpus: 4, busy: [0, 1, 2])])
        #expect(plan.assignments.isEmpty)
    }

    @Test func blockedJobDoesNotStopJobsOnGPUsItCannotUse() {
        // Job 1 needs 4 GPUs: only node a (4 GPUs) could hold it. Node b (2 GPUs) is useless to it, so job 2 runs there.
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 4), makeJob(2)],
                                  nodes: [node("a", gpus: 4, busy: [0]), node("b", gpus: 2)])
        #expect(plan.placement(1) == nil)
        #expect(plan.placement(2) == [.init(nodeId: "b", gpus: [0])])
    }

    @Test func blockedJobReservesOnlyOneNode() {
        // Job 1 (3 GPUs) waits on the node with the most free GPUs (b: 2 free) and reserves those; a's free GPU stays usable.
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 3), makeJob(2)],
                                  nodes: [node("a", gpus: 4, busy: [0, 1, 2]), node("b", gpus: 4, busy: [0, 1])])
        #expect(plan.placement(1) == nil)
        #expect(plan.placement(2) == [.init(nodeId: "a", gpus: [3])])
    }

    @Test func pinnedBlockedJobDoesNotStopOthersElsewhere() {
        let pin = [PinnedGPUs(nodeId: "a", gpus: [0])]
        let plan = Scheduler.plan(pending: [makeJob(1, pinned: pin), makeJob(2)], nodes: [node("a", gpus: 2, busy: [0])])
        #expect(plan.placement(2) == [.init(nodeId: "a", gpus: [1])])
    }

    @Test func cpuJobsNeverWaitForGPUs() {
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 2), makeJob(2, gpus: 0)], nodes: [node("a", gpus: 2, busy: [0, 1])])
        #expect(plan.placement(2) == [.init(nodeId: "a", gpus: [])])
    }

    @Test func cpuJobsAreBoundedBySlots() {
        let plan = Scheduler.plan(pending: (1...5).map { makeJob($0, gpus: 0) }, nodes: [node("a", gpus: 0, slots: 2), node("b", gpus: 0, slots: 1, slotsUsed: 0)])
        #expect(plan.assignments.count == 3)
        let perNode = Dictionary(grouping: plan.assignments, by: { $0.parts[0].nodeId }).mapValues(\.count)
        #expect(perNode == ["a": 2, "b": 1])
    }
}

@Suite struct MultiNodeTests {
    @Test func gangJobGetsAllNodesOrNone() {
        let nodes = [node("a", gpus: 2), node("b", gpus: 2, busy: [0]), node("c", gpus: 2, busy: [0, 1])]
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 2, nodes: 2)], nodes: nodes)
        #expect(plan.assignments.isEmpty)
        let plan2 = Scheduler.plan(pending: [makeJob(1, gpus: 1, nodes: 2)], nodes: nodes)
        #expect(Set(plan2.placement(1)!.map(\.nodeId)) == ["a", "b"])
    }

    @Test func nodelistOrdersRanks() {
        let plan = Scheduler.plan(pending: [makeJob(1, gpus: 1, nodes: 2, nodelist: ["c", "a"])],
                                  nodes: [node("a", gpus: 1), node("b", gpus: 1), node("c", gpus: 1)])
        #expect(plan.placement(1)?.map(\.nodeId) == ["c", "a"])
    }
}

@Suite struct FreeingTests {
    @Test func endedJobsFreeTheirGPUs() {
        var running = makeJob(1, gpus: 2)
        running.state = .running
        running.parts = [JobPart(rank: 0, nodeId: "a", gpus: [0, 1])]
        let node = Node(id: "a", address: "x", gpus: (0..<2).map { GPU(index: $0, uuid: "u\($0)", name: "g", memoryMB: 1) },
                        cpuSlots: 1, now: 0, incarnation: "i")
        let busy = NodeCapacity.build(nodes: [node], activeJobs: [running], now: 0, nodeTimeout: 30)
        #expect(Scheduler.plan(pending: [makeJob(2)], nodes: busy).assignments.isEmpty)
        running.state = .completed
        let free = NodeCapacity.build(nodes: [node], activeJobs: [running], now: 0, nodeTimeout: 30)
        #expect(Scheduler.plan(pending: [makeJob(2)], nodes: free).placement(2) == [.init(nodeId: "a", gpus: [0])])
    }

    @Test func orphanGPUsStayBusyAndSilentNodesAreNotSchedulable() {
        var node = Node(id: "a", address: "x", gpus: (0..<2).map { GPU(index: $0, uuid: "u\($0)", name: "g", memoryMB: 1) },
                        cpuSlots: 1, now: 0, incarnation: "i")
        node.orphanGPUs = [0]
        let caps = NodeCapacity.build(nodes: [node], activeJobs: [Job](), now: 10, nodeTimeout: 30)
        #expect(caps[0].busyGPUs == [0])
        #expect(caps[0].schedulable)
        #expect(!NodeCapacity.build(nodes: [node], activeJobs: [Job](), now: 31, nodeTimeout: 30)[0].schedulable)
    }
}

/// Random clusters and queues, checked against the invariants: no GPU is given twice or while busy,
/// every placement fits its request, and the plan is deterministic.
@Suite struct RandomizedSchedulerTests {
    @Test(arguments: 0..<300)
    func invariantsHold(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed))
        let nodes = (0..<Int.random(in: 1...5, using: &rng)).map { i -> NodeCapacity in
            let count = Int.random(in: 0...8, using: &rng)
            let busy = Set((0..<count).filter { _ in Bool.random(using: &rng) })
            return node("n\(i)", gpus: count, busy: busy, up: Int.random(in: 0..<5, using: &rng) > 0,
                        slots: Int.random(in: 0...3, using: &rng))
        }
        let jobs = (1...UInt32.random(in: 1...30, using: &rng)).map { n -> Job in
            switch Int.random(in: 0..<7, using: &rng) {
            case 0:
                let target = nodes.randomElement(using: &rng)!
                let gpus = target.gpus.filter { _ in Bool.random(using: &rng) }
                return makeJob(n, pinned: [PinnedGPUs(nodeId: target.id, gpus: gpus.isEmpty ? Array(target.gpus.prefix(1)) : gpus)])
            case 1: return makeJob(n, gpus: 0)
            case 2: return makeJob(n, gpus: Int.random(in: 1...3, using: &rng), nodes: Int.random(in: 1...3, using: &rng))
            case 3:
                let ids = (0..<4).filter { _ in Bool.random(using: &rng) }
                return makeJob(n, nodes: Int.random(in: 1...2, using: &rng), gpuIds: ids.isEmpty ? [0] : ids)
            default: return makeJob(n, gpus: Int.random(in: 1...4, using: &rng))
            }
        }
        let plan = Scheduler.plan(pending: jobs, nodes: nodes)
        #expect(plan == Scheduler.plan(pending: jobs, nodes: nodes))
        // The shortcuts (stop once nothing can start; skip GPU jobs when no GPU is left) change nothing.
        let queue = jobs.map { PendingJob(id: $0.id, request: $0.request) }
        let cpuOnly = jobs.filter(\.request.isCPUOnly).count
        #expect(plan == Scheduler.planTryingEveryJob(queue: queue, nodes: nodes))
        #expect(plan == Scheduler.plan(queue: queue, nodes: nodes, cpuOnlyPending: cpuOnly))
        let byId = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, $0) })
        var taken = Set<String>()
        var slots: [String: Int] = [:]
        for assignment in plan.assignments {
            let job = jobs.first { $0.id == assignment.job }!
            #expect(assignment.parts.count == job.request.nodeCount)
            #expect(Set(assignment.parts.map(\.nodeId)).count == assignment.parts.count, "one part per node")
            for part in assignment.parts {
                let n = byId[part.nodeId]!
                #expect(n.schedulable)
                if let pinned = job.request.pinned {
                    #expect(pinned.contains { $0.nodeId == part.nodeId && $0.gpus.sorted() == part.gpus })
                } else if let ids = job.request.gpuIds {
                    #expect(part.gpus == ids.sorted())
                } else {
                    #expect(part.gpus.count == job.request.gpusPerNode)
                }
                if part.gpus.isEmpty { slots[part.nodeId, default: 0] += 1 }
                for g in part.gpus {
                    #expect(n.gpus.contains(g))
                    #expect(!n.busyGPUs.contains(g), "busy GPU \(part.nodeId):\(g) handed out")
                    #expect(taken.insert("\(part.nodeId):\(g)").inserted, "GPU \(part.nodeId):\(g) handed out twice")
                }
            }
        }
        for (id, used) in slots { #expect(used <= byId[id]!.cpuSlots - byId[id]!.cpuSlotsUsed) }
    }
}

@Suite struct LongQueueTests {
    /// A full cluster and a long queue of GPU jobs: a CPU-only job at the end still starts, and the pass stops
    /// early once it knows no CPU-only job is left.
    @Test func cpuOnlyJobBehindALongQueueStillStarts() {
        let nodes = [node("a", gpus: 2, busy: [0, 1], slots: 2)]
        var queue = (1...5000).map { PendingJob(id: makeJob(UInt32($0)).id, request: makeJob(UInt32($0)).request) }
        let cpu = makeJob(9999, gpus: 0)
        queue.append(PendingJob(id: cpu.id, request: cpu.request))
        #expect(Scheduler.plan(queue: queue, nodes: nodes, cpuOnlyPending: 1).assignments.map(\.job) == [cpu.id])
        #expect(Scheduler.plan(queue: queue, nodes: nodes).assignments.map(\.job) == [cpu.id])
        // Told there is no CPU-only job, the pass stops at once (so it would not find one).
        #expect(Scheduler.plan(queue: queue, nodes: nodes, cpuOnlyPending: 0).assignments.isEmpty)
    }
}

@Suite struct ExactGPUIdTests {
    @Test func exactIdsOnAnyNodeThatHasThemFree() {
        let nodes = [node("a", gpus: 4, busy: [1]), node("b", gpus: 4, busy: [3])]
        let plan = Scheduler.plan(pending: [makeJob(1, gpuIds: [0, 1])], nodes: nodes)
        #expect(plan.placement(1) == [.init(nodeId: "b", gpus: [0, 1])])
    }

    @Test func exactIdsWaitAndReserveOnlyThoseIds() {
        let nodes = [node("a", gpus: 4, busy: [1])]
        let plan = Scheduler.plan(pending: [makeJob(1, gpuIds: [0, 1]), makeJob(2), makeJob(3)], nodes: nodes)
        #expect(plan.placement(1) == nil)
        #expect(plan.placement(2) == [.init(nodeId: "a", gpus: [2])], "GPU 0 is reserved for job 1; 2 and 3 are not")
        #expect(plan.placement(3) == [.init(nodeId: "a", gpus: [3])])
    }

    @Test func exactIdsWithANodelist() {
        let nodes = [node("a", gpus: 2), node("b", gpus: 2)]
        let plan = Scheduler.plan(pending: [makeJob(1, nodelist: ["b"], gpuIds: [1])], nodes: nodes)
        #expect(plan.placement(1) == [.init(nodeId: "b", gpus: [1])])
    }

    @Test func admissionOfExactIds() {
        let cluster = [node("a", gpus: 2), node("b", gpus: 4)]
        #expect(Admission.check(command: "x", request: ResourceRequest(gpuIds: [3]), nodes: cluster) == nil)
        #expect(Admission.check(command: "x", request: ResourceRequest(gpuIds: [4]), nodes: cluster)?.message == "no node has GPUs 4")
        #expect(Admission.check(command: "x", request: ResourceRequest(nodes: 2, gpuIds: [3]), nodes: cluster) != nil)
        #expect(Admission.check(command: "x", request: ResourceRequest(gpuIds: [1, 1]), nodes: cluster) != nil)
    }

    /// `mayStartAnything` walks the capacities in place; it must say what a pass's own count says (free GPUs on
    /// schedulable nodes, or free CPU slots there when CPU-only jobs wait), on seeded random capacities: nodes down,
    /// full, with busy GPUs they do not have, repeated GPU indices, slots over-used.
    @Test func mayStartAnythingIsAPassCount() {
        var random = SeededRandom(seed: 2311)
        for round in 0..<2000 {
            let nodes = (0..<Int.random(in: 0...5, using: &random)).map { n -> NodeCapacity in
                var gpus = Array(0..<Int.random(in: 0...4, using: &random))
                if gpus.count > 1 && Bool.random(using: &random) { gpus[1] = gpus[0] }
                return NodeCapacity(id: "n\(n)", gpus: gpus, schedulable: Int.random(in: 0..<4, using: &random) > 0,
                                    busyGPUs: Set((0..<Int.random(in: 0...5, using: &random)).map { _ in Int.random(in: 0...5, using: &random) }),
                                    cpuSlots: Int.random(in: 0...2, using: &random), cpuSlotsUsed: Int.random(in: 0...3, using: &random))
            }
            let cpuOnly = Int.random(in: 0...1, using: &random), preemptible = Int.random(in: 0..<8, using: &random) == 0
            let up = nodes.filter(\.schedulable)
            let expected = preemptible || up.reduce(0) { $0 + $1.freeGPUs.count } > 0
                || (cpuOnly > 0 && up.reduce(0) { $0 + max(0, $1.cpuSlots - $1.cpuSlotsUsed) } > 0)
            #expect(Scheduler.mayStartAnything(nodes: nodes, cpuOnlyPending: cpuOnly, preemptibleRunning: preemptible) == expected,
                    "round \(round): \(nodes)")
        }
    }
}
