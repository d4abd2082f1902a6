import Foundation
import Logging
import MgpuCore
import MgpuWire

/// The master's state: every job and node, in memory and in the store.
///
/// Every change is computed on copies, committed to the store, and only then applied in memory, so a
/// failed commit (a full disk) changes nothing and the API says so.
public actor MasterState {
    /// The actor's own thread (see DedicatedExecutor).
    nonisolated let executor = DedicatedExecutor(label: "mgpu.state")
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    let store: any StateStore
    var output: OutputStore
    let config: MasterConfig
    let logger: Logger
    let clock: @Sendable () -> Double
    public let metrics: MasterMetrics
    /// Where `--notify` events go (posted by `NotifierService`); nil: nowhere (the harness).
    let notifier: Notifier?

    var jobs: [JobID: Job] = [:]
    /// Pending jobs in submission order, as the scheduler reads them.
    var pending = PendingQueue()
    /// Something the scheduler reads changed since its last pass (a job queued or ended, a node came or went).
    var scheduleNeeded = true
    /// A pass is queued on the actor (`scheduleSoon`), to run once the turn that queued it has answered.
    var passQueued = false
    var running: Set<JobID> = [] { didSet { runningOrdered = nil } }
    /// `running` in id order, kept until it changes (`runningInOrder`).
    var runningOrdered: [JobID]?
    /// Running jobs by the nodes their parts are on: a node's sync reads only its own (with 1,000 nodes, scanning every
    /// running job on every sync was most of the master's time).
    var runningOn: [String: Set<JobID>] = [:]
    /// How the cluster is shared: the master's flags, and the accounts and users admins set (kept in the store).
    var policy: SharingPolicy
    /// Each user's decayed GPU-seconds of ended jobs (running jobs are added as they run).
    var usage: [String: Usage] = [:]
    /// What the last policy pass said of the pending jobs: priorities, positions, limits, the reservation.
    var lastPass = PolicyPassInfo()
    var environments = EnvironmentPool()
    var heap = HeapTrimmer()
    /// A pass was skipped (nothing could start) since `lastPass`, after a change or once `lastPass` is
    /// `passInfoMaxAge` old: listings compute it again when they need it (priorities, jobs ahead, expected starts),
    /// with the dependency gate's blocked jobs of then.
    var passInfoStale = false
    /// How long what a listing says of the waiting jobs may stand while only time passes on a full cluster. Every
    /// change (a job queued, ended, cancelled, a node) makes it stale at once; time alone moves priorities and
    /// expected starts slowly. (The liveness tick's pass each second made every listing of a long queue on a full
    /// cluster run the policy pass again: 5 ms of a 10,000-job listing.)
    static let passInfoMaxAge = 30.0
    /// Policy passes run (scheduling, and listings on a full cluster).
    var policyPasses = 0
    var lastBlocked: Set<JobID> = []
    /// Pending jobs per user (for `--max-pending-per-user`), submissions being committed included.
    var pendingByUser: [String: Int] = [:]
    /// Ids given to submissions being committed.
    var reservedIDs: Set<JobID> = []
    /// Pending jobs that wait for other jobs (`--dependency`).
    var dependent: Set<JobID> = []
    /// Array jobs' tasks in memory, by array, and how many of each array's run now (for `%MAX`).
    var arrayTasks: [JobID: Set<JobID>] = [:]
    var arrayRunning: [JobID: Int] = [:]
    /// Arrays whose every task has ended: how they ended as one (MasterState.jobState).
    var arrayOutcomes: [JobID: JobState] = [:]
    private(set) var nodes: [String: Node] = [:]
    /// Nodes currently marked DOWN (for logging the change once).
    var downNodes: Set<String> = [] { didSet { unavailableTotalsStale = true } }
    /// Nodes whose current agent run has not reported yet: they take no new work until it has said what it still runs
    /// (a restarted agent re-adopts the parts its supervisors kept running; after a master restart, likewise).
    var unreported: Set<String> = []
    var nextSeq: Int64 = 1
    var lastPrune = 0.0
    var lastLedgerCheck = 0.0
    var lastHistoryPrune = 0.0
    /// Ended parts each node was told it may forget (bounded). A report built before that acknowledgement can arrive
    /// after it; such a stale "running" is not an orphan.
    var acknowledgedRecently: [String: AcknowledgedParts] = [:]
    /// The free TCP port each node reported last (for distributed jobs' MASTER_PORT).
    var freePorts: [String: Int] = [:]
    /// The latest telemetry of each node, and the last hour of it.
    var telemetry: [String: NodeTelemetry] = [:]
    /// Each node's GPUs its last telemetry says are not to be used (unhealthy, or in use outside mgpu where the node
    /// avoids those), kept as each sample comes: every scheduling pass reads them. Nodes with none are absent.
    private(set) var unavailableGPUs: [String: Set<Int>] = [:]
    /// How many of each node's own GPUs its `unavailableGPUs` hold in use outside mgpu and how many unhealthy (nodes
    /// with none are absent), and their totals over the nodes that are UP and not drained, summed again when a
    /// waiting job's note is asked for after any change (`unavailableTotals()`).
    private var unavailableCounts: [String: (outside: Int, unhealthy: Int)] = [:]
    private var unavailableTotalsCache = (outside: 0, unhealthy: 0)
    private var unavailableTotalsStale = false
    /// Every node's capacity for the scheduling passes, kept as jobs start and end and nodes change (`setNode`,
    /// `apply`, `setUnavailable`); made from everything when first needed, and again if the check against a build
    /// (`checkCapacityLedger`, every 15 s) ever finds it wrong.
    var ledger: CapacityLedger?
    /// How many times that check found the ledger wrong (0, or a bug: it is logged as an error).
    var ledgerMismatches = 0
    var history: [String: NodeHistory] = [:]
    /// What telemetry said of each running job's GPUs since its run started (folded into the job when the run ends).
    var jobSamples: [JobID: JobUsage] = [:]
    /// Running jobs whose GPUs have all been below the idle threshold since then; those already marked idle.
    var idleSince: [JobID: Double] = [:]
    var idleByNode: [JobID: [String: Double]] = [:]
    var markedIdle: Set<JobID> = []
    /// Per user: GPU-seconds and energy of the runs that ended since the master started (Prometheus counters).
    var endedTotals: [String: JobUsage] = [:]
    /// Arrays whose end has been notified (one event for all their tasks).
    var notified: Set<JobID> = []
    /// Job ids: random, or repeatable with a seed (the harness).
    var rng: SeededRandom

    /// Long-polls waiting on a key: "node:ID" (work for an agent), "job:ID" (output or state of a job),
    /// "stdin:ID" (input for a job), "dashboard" (anything the dashboard shows). Closed at shutdown.
    nonisolated let waiters = WaitList<String>()

    public init(config: MasterConfig, store: any StateStore, logger: Logger, metrics: MasterMetrics = MasterMetrics(),
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }, seed: UInt64? = nil,
                notifier: Notifier? = nil) throws {
        self.config = config
        self.notifier = notifier
        self.rng = seed.map(SeededRandom.init(seed:)) ?? SeededRandom()
        self.metrics = metrics
        self.store = store
        self.logger = logger
        self.clock = clock
        self.output = try OutputStore(root: config.stateDir + "/output")
        let now = clock()
        let loaded = try store.load(endedSince: now - config.keepEndedSeconds)
        nextSeq = loaded.maxSeq + 1
        var policy = config.policy
        if let stored = loaded.policy {
            policy.accounts = stored.accounts
            policy.users = stored.users
        }
        self.policy = policy
        self.usage = loaded.usage
        for var job in loaded.jobs {
            // Jobs stored before time limits were the rule get the default: it is planned with, so it must be enforced
            // (committed when the job starts).
            if job.state == .pending && job.timeLimit == nil { job.timeLimit = policy.defaultTime }
            jobs[job.id] = job
            pendingByUser[job.user, default: 0] += Self.pendingWeight(job)
            if job.state == .pending {
                pending.insert(job)
                if job.dependencies != nil { dependent.insert(job.id) }
            }
            if let parent = job.id.arrayParent {
                arrayTasks[parent, default: []].insert(job.id)
                if job.state == .running { arrayRunning[parent, default: 0] += 1 }
            }
            if job.state == .running {
                running.insert(job.id)
                for part in job.parts { runningOn[part.nodeId, default: []].insert(job.id) }
            }
            nextSeq = max(nextSeq, job.seq + 1)
        }
        for var node in loaded.nodes {
            // Give every known node a full timeout to report in after a master restart.
            node.lastSeen = now
            nodes[node.id] = node   // (at start: no shapes made yet)
            unreported.insert(node.id)
        }
    }

    /// A job, from memory or, once it has left memory, from the store.
    func lookup(_ id: JobID) -> Job? {
        jobs[id] ?? (try? store.job(id)) ?? nil
    }

    /// Ended jobs leave memory after `--keep-ended` (they stay in the store): listings and the dashboard never scan
    /// all of history. Run from the liveness loop, at most every `every` seconds.
    func pruneEnded(now: Double, every: Double = 30) {
        guard now - lastPrune >= every else { return }
        lastPrune = now
        let cutoff = now - config.keepEndedSeconds
        let old = jobs.values.filter { $0.state.isTerminal && ($0.endTime ?? now) < cutoff }.map(\.id)
        for id in old {
            jobs[id] = nil
            if let parent = id.arrayParent {
                arrayTasks[parent]?.remove(id)
                if arrayTasks[parent]?.isEmpty == true { arrayTasks[parent] = nil }
            }
        }
        if !old.isEmpty { logger.debug("ended jobs left memory", metadata: ["count": "\(old.count)"]) }
        // Once an hour: history past --history-days leaves the store.
        if let keep = config.historySeconds, now - lastHistoryPrune >= 3600 {
            lastHistoryPrune = now
            do {
                let count = try store.pruneHistory(endedBefore: now - max(keep, config.keepEndedSeconds))
                if count > 0 { logger.info("history pruned", metadata: ["jobs": "\(count)", "days": "\(Int(keep / 86_400))"]) }
            } catch {
                logger.error("could not prune history: \(error)")
            }
        }
    }

    public var summary: (jobs: Int, pending: Int, running: Int, nodes: Int) {
        (jobs.count, pending.count, running.count, nodes.count)
    }

    // MARK: Helpers

    /// Stores (or removes) a node: every change of `nodes` after start goes through here (it is `private(set)`), so that
    /// the kept capacities (`ledger`) follow it.
    func setNode(_ node: Node?, id: String) {
        nodes[id] = node
        if unavailableCounts[id] != nil { unavailableTotalsStale = true }   // drained, resumed or removed
        if let node { ledger?.setNode(node) } else { ledger?.removeNode(id) }
    }

    /// Stores the GPUs a node's telemetry says are not to be used (every change of `unavailableGPUs` goes through here),
    /// and counts them: those its latest sample (`telemetry`) calls unhealthy, the rest in use outside mgpu. Only GPUs
    /// the node registered are counted: an agent's sample naming others changes no one's notes.
    func setUnavailable(_ gpus: Set<Int>, node id: String) {
        var counts = (outside: 0, unhealthy: 0)
        if !gpus.isEmpty, let node = nodes[id] {
            let unhealthy = Set(telemetry[id]?.unhealthyGPUs ?? [])
            for gpu in node.gpus where gpus.contains(gpu.index) {
                if unhealthy.contains(gpu.index) { counts.unhealthy += 1 } else { counts.outside += 1 }
            }
        }
        if counts != unavailableCounts[id] ?? (0, 0) {
            unavailableCounts[id] = counts == (0, 0) ? nil : counts
            unavailableTotalsStale = true
        }
        unavailableGPUs[id] = gpus.isEmpty ? nil : gpus
        ledger?.setUnavailable(gpus, node: id)
    }

    /// GPUs in use outside mgpu and unhealthy GPUs on the nodes that are UP and not drained (those a job could get
    /// once they are free again).
    func unavailableTotals() -> (outside: Int, unhealthy: Int) {
        if unavailableTotalsStale {
            var totals = (outside: 0, unhealthy: 0)
            for (id, counts) in unavailableCounts where !downNodes.contains(id) && nodes[id].map({ $0.drain == nil }) == true {
                totals.outside += counts.outside
                totals.unhealthy += counts.unhealthy
            }
            unavailableTotalsCache = totals
            unavailableTotalsStale = false
        }
        return unavailableTotalsCache
    }

    /// What admission checks a submission against: each node's GPUs, their models and its CPU slots (`Admission.check`
    /// looks at nothing else), read from the kept capacities (with 1,000 nodes, building every node's capacity took a
    /// millisecond of each submission).
    func nodeShapes() -> [NodeCapacity] {
        makeLedgerIfNeeded()
        return ledger!.shapes
    }

    /// Makes the kept capacities from everything if there are none yet.
    func makeLedgerIfNeeded() {
        if ledger == nil { ledger = CapacityLedger(nodes: Array(nodes.values), activeParts: runningParts(), unavailableGPUs: unavailableGPUs) }
    }

    func capacities(now: Double) -> [NodeCapacity] {
        makeLedgerIfNeeded()
        var caps = ledger!.capacities(now: now, nodeTimeout: config.nodeTimeout)
        if !unreported.isEmpty {
            for i in caps.indices where unreported.contains(caps[i].id) { caps[i].schedulable = false }
        }
        return caps
    }

    /// The running jobs' parts, read where they are kept (a Job copied out of the dictionary retains its every field).
    func runningParts() -> [[JobPart]] {
        let jobs = self.jobs
        return running.compactMap { id in jobs[id]?.isActive == true ? jobs[id]?.parts : nil }
    }

    /// Compares the kept capacities with a build from everything (`NodeCapacity.build`, their definition); if they
    /// differ, logs it and builds the ledger again. Run every `every` seconds from the liveness tick: a build and the
    /// comparison are 2-3 ms with 1,000 nodes, which every second was 1.7 % of a master's CPU with 1,000 agents (the
    /// randomized protocol tests check the ledger after every step).
    func checkCapacityLedger(now: Double, every: Double) {
        guard now - lastLedgerCheck >= every else { return }
        lastLedgerCheck = now
        checkCapacityLedger(now: now)
    }

    func checkCapacityLedger(now: Double) {
        guard var kept = ledger else { return }
        let built = NodeCapacity.build(nodes: Array(nodes.values), activeParts: runningParts(), now: now,
                                       nodeTimeout: config.nodeTimeout, unavailableGPUs: unavailableGPUs)
        let held = kept.capacities(now: now, nodeTimeout: config.nodeTimeout)
        guard held != built else { return }
        ledgerMismatches += 1
        let differ = zip(held, built).filter { $0 != $1 }.map(\.0.id) + (held.count == built.count ? [] : ["(\(held.count) vs \(built.count) nodes)"])
        logger.error("kept node capacities differed from a build: built again", metadata: ["nodes": "\(differ.prefix(10).joined(separator: ","))"])
        ledger = nil
    }

    /// Commits jobs and nodes, then applies them in memory.
    func commit(jobs changes: [Job], nodes changedNodes: [Node] = [], removingNodes removed: [String] = [],
                removingJobs removedJobs: [JobID] = []) throws {
        let changed = withAccounting(changes)
        let usageChanged = usageAfter(changed)
        try store.commit(StoreChange(jobs: changed, nodes: changedNodes, removedNodes: removed, usage: usageChanged,
                                     removedJobs: removedJobs))
        for (user, value) in usageChanged { usage[user] = value }
        for job in changed where job.state != .running {
            jobSamples[job.id] = nil
            idleSince[job.id] = nil
            idleByNode[job.id] = nil
            markedIdle.remove(job.id)
        }
        countEndedRuns(changed)
        let ended = changed.filter { $0.state.isTerminal && jobs[$0.id]?.state.isTerminal != true }
        apply(changed)
        notifyEnded(ended)
        for id in removedJobs {
            // An array's record whose tasks have all started (or been cancelled one by one).
            guard let old = jobs.removeValue(forKey: id) else { continue }
            if old.state == .running { ledger?.remove(old.parts) }
            pendingByUser[old.user, default: 0] -= Self.pendingWeight(old)
            pending.remove([id: old.seq])
            dependent.remove(id)
            scheduleNeeded = true
            waiters.wake("job:\(id)")
            waiters.wake("dashboard")
        }
        for node in changedNodes { setNode(node, id: node.id) }
        for id in removed { setNode(nil, id: id) }
        if !changedNodes.isEmpty || !removed.isEmpty { scheduleNeeded = true }
    }

    /// Applies committed jobs in memory.
    func apply(_ changed: [Job]) {
        heap.churn += changed.count
        var leftQueue: [JobID: Int64] = [:]
        for job in changed { apply(job, leftQueue: &leftQueue) }
        pending.remove(leftQueue)
    }

    private func apply(_ job: Job, leftQueue: inout [JobID: Int64]) {
        var job = job
        // Equal environments share one dictionary in memory (a job changed keeps its own: the same storage, so the
        // comparison is immediate). Written only when it is another dictionary: a write to a job that the caller
        // still holds copies the job's fields (Job.Storage).
        let shared: [String: String]
        if let kept = jobs[job.id]?.environment, kept == job.environment { shared = kept }
        else { shared = environments.intern(job.environment) }
        if !shared.isSameStorage(as: job.environment) { job.environment = shared }
        let old = jobs.updateValue(job, forKey: job.id)
        pendingByUser[job.user, default: 0] += Self.pendingWeight(job) - (old.map(Self.pendingWeight) ?? 0)
        if let old, old.state == .pending && job.state != .pending {
            leftQueue[job.id] = old.seq
            dependent.remove(job.id)
        }
        // New, or requeued after its node was lost: into the queue at its place in submission order.
        if old?.state != .pending && job.state == .pending {
            pending.insert(job)
            if job.dependencies != nil { dependent.insert(job.id) }
        }
        if let parent = job.id.arrayParent {
            arrayTasks[parent, default: []].insert(job.id)
            let was = old?.state == .running, now = job.state == .running
            if was != now { arrayRunning[parent, default: 0] += now ? 1 : -1 }
        }
        if job.state == .running { running.insert(job.id) } else { running.remove(job.id) }
        if let old, old.state == .running {
            ledger?.remove(old.parts)
            for part in old.parts {
                runningOn[part.nodeId]?.remove(job.id)
                if runningOn[part.nodeId]?.isEmpty == true { runningOn[part.nodeId] = nil }
            }
        }
        if job.state == .running {
            ledger?.add(job.parts)
            for part in job.parts { runningOn[part.nodeId, default: []].insert(job.id) }
        }
        if old?.state != job.state { scheduleNeeded = true }
        if old?.state != job.state || old?.cancelRequested != job.cancelRequested || old?.terminating != job.terminating
            || old?.preemptedBy != job.preemptedBy {
            waiters.wake("job:\(job.id)")
            if let parent = job.id.arrayParent { waiters.wake("job:\(parent)") }
            waiters.wake("dashboard")
            for part in job.parts { waiters.wake("node:\(part.nodeId)") }
        }
    }

    /// Answers every long-poll, and every later wait returns at once (at shutdown).
    public nonisolated func wakeAll() {
        waiters.close()
    }

    // MARK: Scheduling

    /// A scheduling pass in the actor's next turn instead of this one: a submission is answered once its jobs are
    /// committed and queued, without waiting for the pass that starts them and its commit. One pass for all the
    /// submissions whose turns came before it.
    func scheduleSoon() {
        guard !passQueued else { return }
        passQueued = true
        Task {
            passQueued = false
            schedule()
        }
    }

    /// Runs one scheduling pass, when something it reads changed since the last (or when `force`d), and applies
    /// its plan in one transaction.
    func schedule(force: Bool = false) {
        guard !pending.isEmpty, scheduleNeeded || force else { return }
        let somethingChanged = scheduleNeeded
        scheduleNeeded = false
        let now = clock()
        let blocked = dependencyGate(now: now)
        let caps = capacities(now: now)
        let preemptibleRunning = policy.order != .fifo && running.contains { jobs[$0]?.preemptible == true }
        guard Scheduler.mayStartAnything(nodes: caps, cpuOnlyPending: pending.cpuOnly, preemptibleRunning: preemptibleRunning) else {
            lastBlocked = blocked
            if somethingChanged || now - lastPass.at >= Self.passInfoMaxAge { passInfoStale = true }
            return
        }
        let plan: Plan
        if policy.order == .fifo {
            let unblocked = blocked.isEmpty ? pending.jobs : pending.jobs.filter { !blocked.contains($0.id) }
            let queue = expandArrays(unblocked, caps: caps)
            let asQueued = blocked.isEmpty && !hasArrays(unblocked)
            plan = Scheduler.plan(queue: queue, nodes: caps, cpuOnlyPending: asQueued ? pending.cpuOnly : .max)
        } else {
            plan = policyPass(caps, now: now, excluding: blocked)
        }
        logger.debug("scheduling pass", metadata: ["pending": "\(pending.count)", "started": "\(plan.assignments.count)",
                                                   "free": "\(caps.map { "\($0.id):\($0.freeGPUs.count)" }.joined(separator: ","))"])
        guard !plan.assignments.isEmpty || !plan.preemptions.isEmpty else { return }
        var changed: [Job] = []
        var records: [JobID: Job] = [:]
        for preemption in plan.preemptions {
            guard var victim = jobs[preemption.victim], victim.state == .running, victim.preemptedBy == nil else { continue }
            victim.preemptedBy = preemption.forJob
            changed.append(victim)
        }
        let stopping = changed.count
        for assignment in plan.assignments {
            var records2 = records
            guard var job = jobs[assignment.job] ?? splitTask(assignment.job, records: &records2) else { continue }
            job.parts = assignment.parts.enumerated().map { JobPart(rank: $0, nodeId: $1.nodeId, gpus: $1.gpus) }
            if job.request.distributed, let first = job.parts.first {
                job.rendezvousPort = freePorts.removeValue(forKey: first.nodeId)
                    ?? 29500 + Int(job.id.number % 1000)
            }
            do { try job.transition(to: .running, at: now) } catch { continue }
            records = records2
            changed.append(job)
        }
        let (recordsChanged, recordsRemoved) = Self.settle(records)
        do {
            try commit(jobs: changed + recordsChanged, removingJobs: recordsRemoved)
        } catch {
            logger.error("could not start \(changed.count) job(s): \(error)")
            scheduleNeeded = true
            return
        }
        for job in changed.prefix(stopping) {
            logger.info("job preempting", metadata: ["job": "\(job.id)", "for": "\(job.preemptedBy!)", "node": "\(job.placementText)"])
        }
        for job in changed.dropFirst(stopping) {
            metrics.schedulingLatency.record(max(0, now - job.submitTime))
            logger.info("job started", metadata: ["job": "\(job.id)", "node": "\(job.placementText)",
                                                  "waited": "\(String(format: "%.3f", now - job.submitTime))s"])
        }
    }
}

extension Dictionary {
    /// True when both are the one storage (then they are equal); false may still be equal. A Dictionary is one
    /// reference to its storage, compared here as bits.
    func isSameStorage(as other: Self) -> Bool {
        withUnsafeBytes(of: self) { a in withUnsafeBytes(of: other) { b in a.elementsEqual(b) } }
    }
}

/// Equal environments as one dictionary in memory: every `mgpu submit` from one shell sends the same environment, and
/// each arrives decoded as a dictionary of its own (about 5 KB for a usual login environment).
struct EnvironmentPool {
    private var entries: Set<[String: String]> = []
    /// The one given last: a submission's jobs share one dictionary, and comparing with the same storage is immediate
    /// where hashing 40 variables for every job of a 1,000-job submission is not.
    private var last: [String: String] = [:]

    /// `environment`, or an equal one already held.
    mutating func intern(_ environment: [String: String]) -> [String: String] {
        if environment.isEmpty { return environment }
        if environment == last { return last }
        // Bounded: forgetting the pool only means that later equal environments start a new shared copy.
        if entries.count >= 4096 && !entries.contains(environment) { entries.removeAll(keepingCapacity: true) }
        last = entries.insert(environment).memberAfterInsert
        return last
    }
}

