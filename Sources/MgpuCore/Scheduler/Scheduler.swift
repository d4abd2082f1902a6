/// The scheduler: a pure function from pending jobs and node capacity to a plan.
///
/// The rule (also in docs/ARCHITECTURE.md):
/// 1. Pending jobs are taken in submission order.
/// 2. A job that fits on free GPUs now starts now. Feasible nodes are those that are UP, in the job's
///    nodelist if it has one, and have at least the GPUs it asks for per node; among them the scheduler
///    picks the tightest fit (fewest free GPUs that still fit, then node id), and the lowest free GPU indices.
/// 3. A job that does not fit reserves what it is waiting for: a pinned job its pinned GPUs that are free;
///    any other job the free GPUs, up to its need, on the feasible node(s) with the most free GPUs.
///    Later jobs may use only GPUs nobody earlier reserved. So a waiting job never blocks GPUs it could
///    not use anyway, and it cannot be starved: the node it waits on only gains free GPUs.
/// 4. CPU-only jobs (`--gpus 0`) never wait for GPUs; they take a CPU slot on the UP node with the most free
///    slots, and reserve nothing.
public enum Scheduler {
    /// One pass over the pending queue (in submission order). `cpuOnlyPending` is how many of those jobs need no
    /// GPU (when the caller knows): once no GPU is left and no CPU-only job can follow, the pass stops, so a pass
    /// over a long queue on a full cluster costs a few steps rather than one per pending job.
    public static func plan(queue: some Sequence<PendingJob>, nodes: [NodeCapacity], cpuOnlyPending: Int = .max) -> Plan {
        var state = PassState(nodes: nodes)
        var plan = Plan()
        var cpuOnlyLeft = cpuOnlyPending
        for job in queue {
            if state.exhausted || (state.availableGPUCount <= 0 && cpuOnlyLeft <= 0) { break }
            if job.request.isCPUOnly {
                cpuOnlyLeft -= 1
            } else if state.availableGPUCount <= 0 {
                continue  // it could neither start nor reserve anything
            }
            if let parts = state.place(job.request) {
                plan.assignments.append(.init(job: job.id, parts: parts))
            }
        }
        return plan
    }

    /// The pass without its shortcuts and fast paths: every pending job is tried, every placement takes the
    /// general route. What the shortcuts must not change (tested).
    static func planTryingEveryJob(queue: some Sequence<PendingJob>, nodes: [NodeCapacity]) -> Plan {
        var state = PassState(nodes: nodes)
        state.fastPaths = false
        var plan = Plan()
        for job in queue {
            if let parts = state.place(job.request) { plan.assignments.append(.init(job: job.id, parts: parts)) }
        }
        return plan
    }

    /// Whether a pass could start anything: a free GPU on a schedulable node, a free CPU slot there when CPU-only jobs
    /// wait (`cpuOnlyPending` of them), or a running preemptible job to make room. When not, the master skips the pass,
    /// and with it the ordering of the whole queue: on a full cluster with a long queue that ordering was most of a
    /// submission's cost.
    /// (A pass's own count of free GPUs and slots, without making the pass's state: with 1,000 nodes that was most of
    /// the cost of a submission on a full cluster.)
    public static func mayStartAnything(nodes: [NodeCapacity], cpuOnlyPending: Int, preemptibleRunning: Bool) -> Bool {
        if preemptibleRunning { return true }
        for i in nodes.indices where nodes[i].schedulable {
            if cpuOnlyPending > 0 && nodes[i].cpuSlots > nodes[i].cpuSlotsUsed { return true }
            if nodes[i].gpus.contains(where: { !nodes[i].busyGPUs.contains($0) }) { return true }
        }
        return false
    }

    /// The same pass over jobs; those not pending (or with a cancel requested) are skipped.
    public static func plan(pending: some Sequence<Job>, nodes: [NodeCapacity]) -> Plan {
        plan(queue: pending.lazy.filter { $0.state == .pending && !$0.cancelRequested }
                .map { PendingJob(id: $0.id, request: $0.request) }, nodes: nodes)
    }
}

/// What the scheduler needs of a pending job.
public struct PendingJob: Sendable, Hashable {
    public var id: JobID
    public var request: ResourceRequest
    /// Its owner (for limits), and its own time limit (nil: the policy's default), for the policy pass.
    public var user: String
    public var timeLimit: Double?
    /// `--preemptible`: the policy pass serves it after every other job, past limits, on GPUs nobody else takes now.
    public var preemptible: Bool
    public init(id: JobID, request: ResourceRequest, user: String = "", timeLimit: Double? = nil, preemptible: Bool = false) {
        self.id = id
        self.request = request
        self.user = user
        self.timeLimit = timeLimit
        self.preemptible = preemptible
    }
}

/// Free and reserved resources during one pass.
struct PassState {
    var nodes: [NodeCapacity]
    var index: [String: Int]
    /// GPUs promised to earlier waiting jobs, per node index.
    var reserved: [Set<Int>]
    var availableGPUCount: Int
    var freeCPUSlots: Int
    /// Per node: GPUs neither busy nor reserved.
    var freeCount: [Int]
    /// Place the common request (some GPUs on one node, anywhere) with one scan and no allocation.
    var fastPaths = true
    /// FIFO: a job that does not fit reserves the free GPUs it waits for. (The policy pass reserves by time instead.)
    var reserveWhenWaiting = true
    /// The policy pass's one reservation (EASY backfill): per node, the GPUs the top waiting job will use at
    /// `shadowTime`; a job may take one of them only when it ends before then (`mayUseShadow`).
    var shadow: [Set<Int>]?
    var shadowTime = Double.infinity
    var mayUseShadow = false

    init(nodes: [NodeCapacity]) {
        self.nodes = nodes
        // One walk, reading the capacities in place (filtering them first copied each, and `freeGPUs` made an array).
        var index: [String: Int] = [:]
        index.reserveCapacity(nodes.count)
        var freeCount: [Int] = []
        freeCount.reserveCapacity(nodes.count)
        var available = 0, slots = 0
        for n in nodes.indices {
            if index[nodes[n].id] == nil { index[nodes[n].id] = n }
            let free = nodes[n].gpus.reduce(0) { $0 + (nodes[n].busyGPUs.contains($1) ? 0 : 1) }
            freeCount.append(free)
            if nodes[n].schedulable {
                available += free
                slots += max(0, nodes[n].cpuSlots - nodes[n].cpuSlotsUsed)
            }
        }
        self.index = index
        self.reserved = Array(repeating: [], count: nodes.count)
        self.availableGPUCount = available
        self.freeCPUSlots = slots
        self.freeCount = freeCount
    }

    /// No job can start any more in this pass.
    var exhausted: Bool { availableGPUCount <= 0 && freeCPUSlots <= 0 }

    func available(_ n: Int) -> [Int] {
        let node = nodes[n]
        if let shadow, !mayUseShadow {
            return node.gpus.filter { !node.busyGPUs.contains($0) && !reserved[n].contains($0) && !shadow[n].contains($0) }
        }
        return node.gpus.filter { !node.busyGPUs.contains($0) && !reserved[n].contains($0) }
    }

    mutating func take(_ n: Int, gpus: [Int]) {
        nodes[n].busyGPUs.formUnion(gpus)
        availableGPUCount -= gpus.count
        freeCount[n] -= gpus.count
    }

    mutating func reserve(_ n: Int, gpus: some Sequence<Int>) {
        for g in gpus where !reserved[n].contains(g) && !nodes[n].busyGPUs.contains(g) {
            reserved[n].insert(g)
            availableGPUCount -= 1
            freeCount[n] -= 1
        }
    }

    /// Places a request, or reserves what it waits for and returns nil.
    mutating func place(_ request: ResourceRequest) -> [Plan.Placement]? {
        if let pinned = request.pinned { return placePinned(pinned) }
        if request.gpusPerNode == 0 { return placeCPU(request) }
        return placeGPUs(request)
    }

    mutating func placePinned(_ pinned: [PinnedGPUs]) -> [Plan.Placement]? {
        var ok = true
        var targets: [(Int, [Int])] = []
        for pin in pinned {
            guard let n = index[pin.nodeId] else { return nil }
            let avail = Set(available(n))
            if !nodes[n].schedulable || !pin.gpus.allSatisfy(avail.contains) { ok = false }
            targets.append((n, pin.gpus))
        }
        guard ok else {
            if reserveWhenWaiting { for (n, gpus) in targets where nodes[n].schedulable { reserve(n, gpus: gpus) } }
            return nil
        }
        if pinned.allSatisfy({ $0.gpus.isEmpty }) {
            // Pinned to nodes without GPUs: a CPU slot on each.
            guard targets.allSatisfy({ nodes[$0.0].cpuSlotsUsed < nodes[$0.0].cpuSlots }) else { return nil }
            for (n, _) in targets { nodes[n].cpuSlotsUsed += 1; freeCPUSlots -= 1 }
        }
        for (n, gpus) in targets { take(n, gpus: gpus) }
        return targets.map { .init(nodeId: nodes[$0.0].id, gpus: $0.1.sorted()) }
    }

    /// The nodes a request may use at all: in its nodelist when it has one, and not one it is excluded from.
    struct NodeFilter {
        let allowed: Set<String>?
        let excluded: Set<String>
        init(_ request: ResourceRequest) {
            allowed = request.nodelist.map(Set.init)
            excluded = Set(request.excludedNodes ?? [])
        }
        func admits(_ id: String) -> Bool { (allowed?.contains(id) ?? true) && !excluded.contains(id) }
    }

    func feasible(_ request: ResourceRequest) -> [Int] {
        let filter = NodeFilter(request)
        return nodes.indices.filter { n in
            nodes[n].schedulable && nodes[n].gpus.count >= request.gpusPerNode && filter.admits(nodes[n].id)
                && (request.gpuIds?.allSatisfy(nodes[n].gpus.contains) ?? true)
                && (!request.selectsGPUs || nodes[n].gpus(for: request).count >= request.gpusPerNode)
        }
    }

    /// The GPUs of node `n` a request may use now: with exact `gpuIds`, only those; with a kind, those of it.
    func usable(_ n: Int, _ request: ResourceRequest) -> [Int] {
        let avail = request.selectsGPUs ? available(n).filter { request.admits(nodes[n].models[$0]) } : available(n)
        guard let ids = request.gpuIds else { return avail }
        let set = Set(avail)
        return ids.allSatisfy(set.contains) ? ids.sorted() : ids.filter(set.contains).sorted()
    }

    mutating func placeGPUs(_ request: ResourceRequest) -> [Plan.Placement]? {
        let need = request.gpusPerNode
        if fastPaths && request.nodes == 1 && request.gpuIds == nil && request.nodelist == nil && request.excludedNodes == nil
            && !request.selectsGPUs {
            // The tightest fit in one scan: fewest free GPUs that still fit, then node id.
            var best = -1
            for n in nodes.indices where nodes[n].schedulable && freeCount[n] >= need {
                if best < 0 || freeCount[n] < freeCount[best] || (freeCount[n] == freeCount[best] && nodes[n].id < nodes[best].id) {
                    best = n
                }
            }
            if best >= 0 {
                let gpus = Array(available(best).prefix(need))
                take(best, gpus: gpus)
                return [.init(nodeId: nodes[best].id, gpus: gpus)]
            }
            // It waits: the general route below reserves what it waits for.
        }
        let candidates = feasible(request).map { ($0, usable($0, request)) }
        let fitting = candidates.filter { $0.1.count >= need }
            .sorted { ($0.1.count, nodes[$0.0].id) < ($1.1.count, nodes[$1.0].id) }
        if fitting.count >= request.nodes {
            let chosen = request.nodelist == nil ? Array(fitting.prefix(request.nodes))
                : orderedByNodelist(Array(fitting.prefix(request.nodes)), request.nodelist!)
            return chosen.map { n, avail in
                let gpus = Array(avail.prefix(need))
                take(n, gpus: gpus)
                return .init(nodeId: nodes[n].id, gpus: gpus)
            }
        }
        guard reserveWhenWaiting else { return nil }
        let best = candidates.sorted { ($0.1.count, nodes[$1.0].id) > ($1.1.count, nodes[$0.0].id) }
        for (n, avail) in best.prefix(request.nodes) { reserve(n, gpus: avail.prefix(need)) }
        return nil
    }

    mutating func placeCPU(_ request: ResourceRequest) -> [Plan.Placement]? {
        let filter = NodeFilter(request)
        let candidates = nodes.indices.filter { n in
            nodes[n].schedulable && nodes[n].cpuSlotsUsed < nodes[n].cpuSlots && filter.admits(nodes[n].id)
        }.sorted {
            (nodes[$0].cpuSlots - nodes[$0].cpuSlotsUsed, nodes[$1].id) > (nodes[$1].cpuSlots - nodes[$1].cpuSlotsUsed, nodes[$0].id)
        }
        guard candidates.count >= request.nodes else { return nil }
        let chosen = request.nodelist == nil ? Array(candidates.prefix(request.nodes))
            : Array(candidates.prefix(request.nodes)).sorted { request.nodelist!.firstIndex(of: nodes[$0].id)! < request.nodelist!.firstIndex(of: nodes[$1].id)! }
        for n in chosen { nodes[n].cpuSlotsUsed += 1; freeCPUSlots -= 1 }
        return chosen.map { .init(nodeId: nodes[$0].id, gpus: []) }
    }

    /// With an explicit nodelist, ranks follow the list's order.
    func orderedByNodelist(_ chosen: [(Int, [Int])], _ list: [String]) -> [(Int, [Int])] {
        chosen.sorted { (list.firstIndex(of: nodes[$0.0].id) ?? .max) < (list.firstIndex(of: nodes[$1.0].id) ?? .max) }
    }
}
