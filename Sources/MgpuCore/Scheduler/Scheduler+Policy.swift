/// What the policy pass needs besides the queue and the nodes.
public struct PolicyContext: Sendable {
    public var now: Double
    public var policy: SharingPolicy
    /// Running parts, with when each ends at the latest (its start plus its time limit).
    public var running: [RunningPart]
    /// What each user holds now (running jobs and their GPUs), for limits.
    public var holdings: [String: Holding]
    /// How long after its time limit a job may still hold its GPUs (the kill grace, then the agent's next report):
    /// a job backfills onto reserved GPUs only if it ends this much before the reservation starts.
    public var slack: Double
    /// The running `--preemptible` jobs (their GPUs are in `running` too; they are not in `holdings`).
    public var preemptible: [PreemptibleJob]

    public init(now: Double, policy: SharingPolicy, running: [RunningPart], holdings: [String: Holding], slack: Double = 0,
                preemptible: [PreemptibleJob] = []) {
        self.now = now
        self.policy = policy
        self.running = running
        self.holdings = holdings
        self.slack = slack
        self.preemptible = preemptible
    }
}

/// A running `--preemptible` job, as preemption weighs it.
public struct PreemptibleJob: Sendable, Equatable {
    public var id: JobID
    public var parts: [Plan.Placement]
    /// Its priority now (the lowest are stopped first), and when it started (of equal ones, the latest first: less work lost).
    public var priority: Double
    public var start: Double
    /// Already being stopped for a waiting job: its GPUs count as free for that one.
    public var stopping: Bool
    public init(id: JobID, parts: [Plan.Placement], priority: Double, start: Double, stopping: Bool = false) {
        self.id = id
        self.parts = parts
        self.priority = priority
        self.start = start
        self.stopping = stopping
    }
}

public struct RunningPart: Sendable, Hashable {
    public var nodeId: String
    public var gpus: [Int]
    public var end: Double
    public init(nodeId: String, gpus: [Int], end: Double) {
        self.nodeId = nodeId
        self.gpus = gpus
        self.end = end
    }
}

public struct Holding: Sendable, Hashable {
    public var gpus = 0
    public var jobs = 0
    public init(gpus: Int = 0, jobs: Int = 0) {
        self.gpus = gpus
        self.jobs = jobs
    }
}

extension Scheduler {
    /// How many waiting jobs after the reservation the pass still tries to backfill (Slurm's bf_max_job_test).
    public static let backfillDepth = 2_000

    /// The policy pass (docs/ARCHITECTURE.md), over jobs in priority order:
    /// 1. A job over its user's or its account's limit waits, and the plan says which limit; it takes nothing.
    /// 2. A job that fits now starts now, placed as in the FIFO pass (tightest fit, lowest GPU indices; a multi-node
    ///    job gets all its nodes at once or none).
    /// 3. The first job that does not fit gets the one reservation (EASY backfill): the earliest time its GPUs will be
    ///    free by the running jobs' time limits, and which GPUs it will take then.
    /// 4. A later job may start now if it fits without those GPUs, or if it ends (by its time limit, plus the slack)
    ///    before then. One that would still run then counts the reserved job against its user's and account's limits,
    ///    so that it cannot push the reserved job over them.
    ///
    /// `--preemptible` jobs come after all the others, past limits, and may take reserved GPUs (they are stopped when
    /// those are needed). Then waiting jobs that are not preemptible get GPUs that preemptible jobs hold, in priority
    /// order, by stopping the fewest of the lowest priority (Scheduler+Preemption); while any is being stopped, no
    /// preemptible job starts.
    public static func plan(byPriority queue: [PendingJob], nodes: [NodeCapacity], context: PolicyContext) -> Plan {
        var state = PassState(nodes: nodes)
        state.reserveWhenWaiting = false
        var plan = Plan()
        var holdings = context.holdings
        var accountHoldings: [String: Holding] = [:]
        for (user, held) in holdings {
            let account = context.policy.account(of: user)
            accountHoldings[account, default: Holding()].gpus += held.gpus
            accountHoldings[account, default: Holding()].jobs += held.jobs
        }
        var ends = context.running.sorted { $0.end < $1.end }
        var examinedAfterReservation = 0
        /// The reserved job's user, account and GPUs, once there is a reservation.
        var reserved: (id: JobID, user: String, account: String, gpus: Int)?
        /// Requests that cannot start even once every running part has ended (no reservation to make for them).
        var neverFits: Set<ResourceRequest> = []
        func reserve(_ job: PendingJob, account: String) -> Bool {
            guard !job.request.isCPUOnly, !neverFits.contains(job.request) else { return false }
            guard let (start, gpus) = state.shadowFor(job.request, ends: ends, now: context.now) else {
                neverFits.insert(job.request)
                return false
            }
            state.shadow = gpus
            state.shadowTime = start
            plan.reservation = .init(job: job.id, start: start)
            reserved = (job.id, job.user, account, job.request.totalGPUs)
            return true
        }
        var waiting: [PendingJob] = []
        for job in queue where !job.preemptible {
            if plan.reservation != nil {
                if state.exhausted && context.preemptible.isEmpty { break }
                examinedAfterReservation += 1
                if examinedAfterReservation > backfillDepth { break }
            }
            let account = context.policy.account(of: job.user)
            if let limit = limitReached(job, user: holdings[job.user] ?? Holding(), account: account,
                                        accountHolding: accountHoldings[account] ?? Holding(), policy: context.policy) {
                plan.held[job.id] = limit
                continue
            }
            let limit = context.policy.timeLimit(job.timeLimit)
            let endsInTime = limit.isFinite && context.now + limit + context.slack <= state.shadowTime
            if let reserved, !endsInTime {
                var user = holdings[job.user] ?? Holding()
                var group = accountHoldings[account] ?? Holding()
                if reserved.user == job.user { user.gpus += reserved.gpus; user.jobs += 1 }
                if reserved.account == account { group.gpus += reserved.gpus; group.jobs += 1 }
                if let limit = limitReached(job, user: user, account: account, accountHolding: group, policy: context.policy) {
                    plan.held[job.id] = "\(limit), counting job \(reserved.id), which has the reservation"
                    continue
                }
            }
            // Nothing is free for it now: only the first such job matters, for its reservation (expected start).
            if (job.request.isCPUOnly ? state.freeCPUSlots <= 0 : state.availableGPUCount <= 0) {
                if plan.reservation == nil { _ = reserve(job, account: account) }
                waiting.append(job)
                continue
            }
            state.mayUseShadow = endsInTime
            state.fastPaths = state.shadow == nil
            if let parts = state.place(job.request) {
                plan.assignments.append(.init(job: job.id, parts: parts))
                let gpus = parts.reduce(0) { $0 + $1.gpus.count }
                holdings[job.user, default: Holding()].gpus += gpus
                holdings[job.user, default: Holding()].jobs += 1
                accountHoldings[account, default: Holding()].gpus += gpus
                accountHoldings[account, default: Holding()].jobs += 1
                for part in parts where !part.gpus.isEmpty {
                    let end = RunningPart(nodeId: part.nodeId, gpus: part.gpus, end: context.now + limit)
                    ends.insert(end, at: ends.firstIndex { $0.end > end.end } ?? ends.endIndex)
                }
            } else {
                if plan.reservation == nil { _ = reserve(job, account: account) }
                waiting.append(job)
            }
        }
        guard queue.contains(where: \.preemptible) || !context.preemptible.isEmpty else { return plan }
        plan.preemptions = preemptions(for: waiting, state: state, context: context, reserved: plan.reservation?.job)
        guard plan.preemptions.isEmpty, !context.preemptible.contains(where: \.stopping) else { return plan }
        // Preemptible jobs: on what is left, reserved GPUs included, past limits.
        state.mayUseShadow = true
        state.fastPaths = true
        for job in queue where job.preemptible {
            if state.exhausted { break }
            if let parts = state.place(job.request) { plan.assignments.append(.init(job: job.id, parts: parts)) }
        }
        return plan
    }

    /// The limit a job would pass if it started now, in words; nil when it may start.
    static func limitReached(_ job: PendingJob, user: Holding, account: String, accountHolding: Holding,
                             policy: SharingPolicy) -> String? {
        let gpus = job.request.totalGPUs
        let own = policy.limits(of: job.user)
        if let max = own.maxGPUs, gpus > max {
            return "it needs \(gpus) GPUs, over \(job.user)'s limit of \(max): it waits until an admin raises the limit"
        }
        if let max = policy.accountLimits(account).maxGPUs, gpus > max {
            return "it needs \(gpus) GPUs, over account \(account)'s limit of \(max): it waits until an admin raises the limit"
        }
        if let max = own.maxGPUs, user.gpus + gpus > max { return "\(job.user) uses \(user.gpus) of their \(max) GPUs (limit)" }
        if let max = own.maxRunning, user.jobs + 1 > max { return "\(job.user) runs \(user.jobs) of their \(max) jobs (limit)" }
        let group = policy.accountLimits(account)
        if let max = group.maxGPUs, accountHolding.gpus + gpus > max {
            return "account \(account) uses \(accountHolding.gpus) of its \(max) GPUs (limit)"
        }
        if let max = group.maxRunning, accountHolding.jobs + 1 > max {
            return "account \(account) runs \(accountHolding.jobs) of its \(max) jobs (limit)"
        }
        return nil
    }
}

extension PassState {
    /// When a waiting request could start at the earliest, by the running parts' ends, and the GPUs it would take
    /// then (per node index); nil when it could not start even once every running part has ended. `ends` is sorted by end.
    func shadowFor(_ request: ResourceRequest, ends: [RunningPart], now: Double) -> (Double, [Set<Int>])? {
        var free = nodes.indices.map { n in nodes[n].schedulable ? Set(available(n)) : [] }
        if let fit = fit(request, free: free) { return (now, fit) }
        for part in ends {
            guard let n = index[part.nodeId], nodes[n].schedulable else { continue }
            free[n].formUnion(part.gpus)
            if let fit = fit(request, free: free) { return (max(now, part.end), fit) }
        }
        return nil
    }

    /// Where a request would go if `free` were the free GPUs: the GPUs per node index, or nil.
    func fit(_ request: ResourceRequest, free: [Set<Int>]) -> [Set<Int>]? {
        var taken = Array(repeating: Set<Int>(), count: nodes.count)
        if let pinned = request.pinned {
            for pin in pinned {
                guard let n = index[pin.nodeId], pin.gpus.allSatisfy(free[n].contains) else { return nil }
                taken[n] = Set(pin.gpus)
            }
            return taken
        }
        let need = request.gpusPerNode
        let filter = NodeFilter(request)
        var fitting: [(Int, [Int])] = []
        for n in nodes.indices where nodes[n].schedulable && nodes[n].gpus.count >= need && filter.admits(nodes[n].id) {
            let kind = request.selectsGPUs ? free[n].filter { request.admits(nodes[n].models[$0]) } : free[n]
            let usable = request.gpuIds.map { ids in ids.allSatisfy(kind.contains) ? ids : [] } ?? kind.sorted()
            if usable.count >= need { fitting.append((n, Array(usable.prefix(need)))) }
        }
        guard fitting.count >= request.nodes else { return nil }
        for (n, gpus) in fitting.sorted(by: { ($0.1.count, nodes[$0.0].id) < ($1.1.count, nodes[$1.0].id) }).prefix(request.nodes) {
            taken[n] = Set(gpus)
        }
        return taken
    }
}
