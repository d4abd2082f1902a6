import Foundation
import MgpuCore
import MgpuWire

/// What the last policy pass said of the pending jobs.
struct PolicyPassInfo {
    var priorities: [JobID: Priority] = [:]
    /// How many pending jobs not held by a limit come before each one.
    var ahead: [JobID: Int] = [:]
    var held: [JobID: String] = [:]
    var reservation: Plan.Reservation?
    /// What the expected starts are computed from, when first asked for (Scheduler.expectedStarts).
    var estimateInputs: (() -> [JobID: Double])?
    /// Each waiting job's expected start (array tasks' under their record's id too), once computed.
    var expected: [JobID: Double]?
    /// When the pass ran.
    var at = -Double.infinity
}

extension MasterState {
    /// The running jobs in id order: a fixed order, so that sums and holdings are the same in every run. Sorted again
    /// only after `running` changes, and by `JobID.orderKey`: each policy pass walks them twice, and with 4,000 running
    /// jobs two sorts by `<` took 2 ms, about what the rest of a pass takes.
    func runningInOrder() -> [JobID] {
        if let runningOrdered { return runningOrdered }
        let ordered = running.map { ($0.orderKey, $0) }.sorted { $0.0 < $1.0 }.map(\.1)
        runningOrdered = ordered
        return ordered
    }

    /// Each user's decayed usage now: ended jobs' GPU-seconds, and what their running jobs have used so far.
    func currentUsage(now: Double) -> [String: Double] {
        var result = usage.mapValues { $0.decayed(to: now, halfLife: policy.halfLife) }
        for id in runningInOrder() {  // a fixed order: the same sums in every run
            guard let job = jobs[id], let start = job.startTime else { continue }
            result[job.user, default: 0] += Double(job.request.totalGPUs) * max(0, now - start)
        }
        return result
    }

    /// The usage of the users whose running jobs end in `changed` (or go back to the queue), to commit with them.
    func usageAfter(_ changed: [Job]) -> [String: Usage] {
        var result: [String: Usage] = [:]
        for job in changed {
            guard let old = jobs[job.id], old.state == .running, job.state != .running, let start = old.startTime else { continue }
            let end = job.endTime ?? clock()
            let gpus = old.parts.reduce(0) { $0 + $1.gpus.count }
            var value = result[job.user] ?? usage[job.user] ?? Usage()
            value.add(Double(gpus) * max(0, end - start), at: end, halfLife: policy.halfLife)
            result[job.user] = value
        }
        return result
    }

    /// Jobs whose dependencies do not hold yet (left out of the pass). Those whose dependencies can never hold are
    /// cancelled here, saying why.
    func dependencyGate(now: Double) -> Set<JobID> {
        var blocked: Set<JobID> = []
        // A cancelled job can break the dependencies of others: repeat until nothing more is cancelled.
        var changed = true
        while changed && !dependent.isEmpty {
            changed = false
            blocked = []
            var cancelled: [Job] = []
            var satisfied: [JobID] = []
            for id in dependent {
                guard var job = jobs[id] else { continue }
                switch Dependency.standing(job.dependencies ?? [], state: { self.jobState($0) }) {
                case .satisfied: satisfied.append(id)  // for good: the jobs it named have started or ended
                case .waiting: blocked.insert(id)
                case .never(let why):
                    job.cancelRequested = true
                    job.reason = "dependency never satisfied: \(why)"
                    try? job.transition(to: .cancelled, at: now)
                    cancelled.append(job)
                }
            }
            dependent.subtract(satisfied)
            guard !cancelled.isEmpty else { break }
            do {
                try commit(jobs: cancelled)
                changed = true
                for job in cancelled {
                    logger.info("job ended", metadata: ["job": "\(job.id)", "state": "CANCELLED", "reason": "\(job.reason ?? "")"])
                }
            } catch {
                logger.error("could not cancel jobs whose dependencies failed: \(error)")
                blocked.formUnion(cancelled.map(\.id))
            }
        }
        return blocked
    }

    /// Pending jobs in priority order (highest first; equal priorities in submission order), with their priorities.
    func priorityOrder(now: Double, excluding blocked: Set<JobID> = []) -> [(PendingJob, Priority)] {
        var users = Set(usage.keys)
        for job in pending.jobs { users.insert(job.user) }
        for id in running { if let job = jobs[id] { users.insert(job.user) } }
        let factors = FairShare.factors(users: users, usage: currentUsage(now: now), policy: policy)
        return pending.jobs.compactMap { pendingJob -> (PendingJob, Priority, Int64)? in
            guard !blocked.contains(pendingJob.id), let job = jobs[pendingJob.id] else { return nil }
            let priority = FairShare.priority(factor: factors[job.user] ?? 1, submitTime: job.submitTime, nice: job.nice ?? 0,
                                              now: now, policy: policy)
            return (pendingJob, priority, job.seq)
        }
        .sorted { $0.1.value != $1.1.value ? $0.1.value > $1.1.value : $0.2 < $1.2 }
        .map { ($0.0, $0.1) }
    }

    /// One pass of the sharing policy: priority order, limits, EASY backfill (Scheduler.plan(byPriority:)).
    func policyPass(_ caps: [NodeCapacity], now: Double, excluding blocked: Set<JobID> = []) -> Plan {
        policyPasses += 1
        let ordered = priorityOrder(now: now, excluding: blocked)
        var parts: [RunningPart] = []
        var holdings: [String: Holding] = [:]
        var preemptible: [Job] = []
        for id in runningInOrder() {
            guard let job = jobs[id] else { continue }
            let end = (job.startTime ?? now) + policy.timeLimit(job.timeLimit)
            // Every part's GPUs, ended ones too: they stay taken until the whole job has ended.
            for part in job.parts where !part.gpus.isEmpty {
                parts.append(RunningPart(nodeId: part.nodeId, gpus: part.gpus, end: end))
            }
            // A preemptible job counts against no limit.
            if job.preemptible == true {
                if !job.cancelRequested && !job.terminating { preemptible.append(job) }
                continue
            }
            holdings[job.user, default: Holding()].gpus += job.request.totalGPUs
            holdings[job.user, default: Holding()].jobs += 1
        }
        var victims: [PreemptibleJob] = []
        if !preemptible.isEmpty {
            let factors = FairShare.factors(users: Set(preemptible.map(\.user)).union(usage.keys).union(pending.jobs.map(\.user)),
                                            usage: currentUsage(now: now), policy: policy)
            victims = preemptible.map { job in
                let priority = FairShare.priority(factor: factors[job.user] ?? 1, submitTime: job.submitTime,
                                                  nice: job.nice ?? 0, now: now, policy: policy)
                return PreemptibleJob(id: job.id, parts: job.parts.map { Plan.Placement(nodeId: $0.nodeId, gpus: $0.gpus) },
                                      priority: priority.value, start: job.startTime ?? now, stopping: job.preemptedBy != nil)
            }
        }
        let queue = expandArrays(ordered.map(\.0), caps: caps)
        let plan = Scheduler.plan(byPriority: queue, nodes: caps,
                                  context: PolicyContext(now: now, policy: policy, running: parts, holdings: holdings,
                                                         slack: config.backfillSlack, preemptible: victims))
        var info = PolicyPassInfo(held: plan.held, reservation: plan.reservation)
        let policyNow = self.policy
        let spare = victims.flatMap(\.parts)
        let limits = Dictionary(queue.map { ($0.id, $0.timeLimit) }, uniquingKeysWith: { a, _ in a })
        let startedNow = plan.assignments.map { ($0, now + policyNow.timeLimit(limits[$0.job] ?? nil)) }
        let skip = Set(plan.held.keys).union(plan.assignments.map(\.job))
        info.estimateInputs = {
            Scheduler.expectedStarts(queue: queue, nodes: caps, running: parts, preemptible: spare, started: startedNow,
                                     skip: skip, now: now, policy: policyNow)
        }
        let started = Set(plan.assignments.map(\.job))
        var ahead = 0
        for (job, priority) in ordered where !started.contains(job.id) {
            info.priorities[job.id] = priority
            info.ahead[job.id] = ahead
            if plan.held[job.id] == nil { ahead += 1 }
        }
        info.at = now
        lastPass = info
        passInfoStale = false
        return plan
    }

    /// Why a pending job waits, in words.
    func waitingNote(_ job: Job, now: Double) -> String {
        // Each table looked in only when it holds anything: a listing asks this of every pending job.
        if !dependent.isEmpty, dependent.contains(job.id), let dependencies = job.dependencies,
           case .waiting(let why) = Dependency.standing(dependencies, state: { self.jobState($0) }) { return why }
        if job.array?.maxRunning != nil, let note = arrayLimitNote(job) { return note }
        guard policy.order != .fifo else { return requestNote(job) }
        if !lastPass.held.isEmpty, let held = lastPass.held[job.id] { return "waiting: " + held }
        if let reservation = lastPass.reservation, reservation.job == job.id || reservation.job.arrayParent == job.id {
            return requestNote(job) + "; expected start " + formatClock(reservation.start, now: now)
        }
        var start = ""
        if let expected = lastPass.expected, !expected.isEmpty, let at = expected[job.id] {
            start = "; expected start " + formatClock(at, now: now)
        }
        if let ahead = lastPass.ahead[job.id], ahead > 0 {
            return (ahead == 1 ? "waiting: 1 job of higher priority" : "waiting: " + String(ahead) + " jobs of higher priority") + start
        }
        return requestNote(job) + start
    }

    /// What the job waits for, and how many GPUs of nodes that are UP the scheduler withholds ("waiting for 1 GPU (1
    /// GPU in use outside mgpu)"): without it, a queue saying "waiting for 1 GPU" beside nodes with no job on a GPU
    /// reads as a stuck queue. A count over the whole cluster, not only GPUs of the job's kind; none for a job that
    /// names its exact GPUs (its note names them).
    func requestNote(_ job: Job) -> String {
        let reason = job.waitingReason
        guard job.usesGPUs, job.request.pinned == nil else { return reason }
        let (outside, unhealthy) = unavailableTotals()
        guard outside > 0 || unhealthy > 0 else { return reason }
        func gpus(_ n: Int) -> String { n == 1 ? "1 GPU" : "\(n) GPUs" }
        if unhealthy == 0 { return reason + " (" + gpus(outside) + " in use outside mgpu)" }
        if outside == 0 { return reason + " (" + gpus(unhealthy) + " unhealthy)" }
        return reason + " (" + gpus(outside) + " in use outside mgpu, " + String(unhealthy) + " unhealthy)"
    }

    /// Computes the last pass's expected starts if nobody has asked for them since it ran.
    func computeExpectedStarts() {
        if passInfoStale {
            // Passes were skipped on a full cluster: the listing's priorities and waits come from one run now (its
            // plan starts nothing, or else the next pass does).
            passInfoStale = false
            if policy.order != .fifo && !pending.isEmpty {
                let now = clock()
                _ = policyPass(capacities(now: now), now: now, excluding: lastBlocked)
            }
        }
        guard lastPass.expected == nil, let compute = lastPass.estimateInputs else { return }
        var expected = compute()
        for (id, start) in expected {
            // An array's record: its first task's.
            if let parent = id.arrayParent, jobs[id] == nil { expected[parent] = min(expected[parent] ?? start, start) }
        }
        lastPass.expected = expected
        lastPass.estimateInputs = nil
    }


    /// Refusals a policy makes at submit: a time limit over --max-time, a job larger than a limit allows, more
    /// pending jobs than a user or account may have.
    func policyRefusal(_ specs: [JobSpec], user: String) -> RequestError? {
        if let max = policy.maxTime, let spec = specs.first(where: { ($0.timeLimit ?? 0) > max }) {
            return RequestError("the time limit \(formatElapsed(spec.timeLimit ?? 0)) is over the longest the master takes, \(formatElapsed(max)) (--max-time)")
        }
        let account = policy.account(of: user)
        let own = policy.limits(of: user), group = policy.accountLimits(account)
        if let spec = specs.first(where: { s in own.maxGPUs.map { s.request.totalGPUs > $0 } ?? false }) {
            return RequestError("the job asks for \(spec.request.totalGPUs) GPUs, more than \(user) may hold at once (\(own.maxGPUs!)): it could never start")
        }
        if let spec = specs.first(where: { s in group.maxGPUs.map { s.request.totalGPUs > $0 } ?? false }) {
            return RequestError("the job asks for \(spec.request.totalGPUs) GPUs, more than account \(account) may hold at once (\(group.maxGPUs!)): it could never start")
        }
        let pendingNow = pendingByUser[user, default: 0]
        let adding = specs.reduce(0) { $0 + ($1.array?.tasks.count ?? 1) }
        if let max = own.maxPending, pendingNow + adding > max {
            return RequestError("\(user) has \(pendingNow) pending jobs, and may have at most \(max) (mgpu admin user set \(user) --max-pending)")
        }
        if let max = group.maxPending {
            let accountPending = pendingByUser.filter { policy.account(of: $0.key) == account }.reduce(0) { $0 + $1.value }
            if accountPending + adding > max {
                return RequestError("account \(account) has \(accountPending) pending jobs, and may have at most \(max)")
            }
        }
        return nil
    }
}

extension MasterState {
    /// An admin sets an account's shares and limits (it is made if new). Takes effect at the next pass.
    public func setAccount(_ name: String, _ settings: PolicySettings) throws {
        if let error = settings.validationError() { throw error }
        guard SafeName.isValid(name) else { throw RequestError("an account name is 1-64 letters, digits, '-', '_' or '.'") }
        var changed = policy
        var account = changed.accounts[name] ?? SharingPolicy.Account()
        if let shares = settings.shares { account.shares = shares }
        account.limits = settings.applied(to: account.limits)
        changed.accounts[name] = account
        try savePolicy(changed)
        logger.info("account set", metadata: ["account": "\(name)", "shares": "\(account.shares)"])
    }

    /// An admin sets a user's account, shares and limits. Takes effect at the next pass.
    public func setUserPolicy(_ name: String, _ settings: PolicySettings) throws {
        if let error = settings.validationError() { throw error }
        guard SafeName.isValid(name) else { throw RequestError("a user name is 1-64 letters, digits, '-', '_' or '.'") }
        if let account = settings.account, account != SharingPolicy.defaultAccount, policy.accounts[account] == nil {
            throw RequestError("no account \(account) (make it with `mgpu admin account add \(account)`; known: \(([SharingPolicy.defaultAccount] + policy.accounts.keys.sorted()).joined(separator: ", ")))")
        }
        var changed = policy
        var user = changed.users[name] ?? SharingPolicy.UserSettings()
        if let account = settings.account { user.account = account == SharingPolicy.defaultAccount ? nil : account }
        if let shares = settings.shares { user.shares = shares }
        user.limits = settings.applied(to: user.limits)
        if let notify = settings.notify { user.notify = notify.isEmpty ? nil : notify }
        changed.users[name] = user
        try savePolicy(changed)
        logger.info("user policy set", metadata: ["user": "\(name)", "account": "\(changed.account(of: name))"])
    }

    private func savePolicy(_ changed: SharingPolicy) throws {
        try store.commit(StoreChange(policy: changed))
        policy = changed
        scheduleNeeded = true
        schedule()
    }

    /// The policy and every user's standing: usage, fair-share factor, what they hold and wait for.
    public func policyReport() -> PolicyReport {
        let now = clock()
        let usageNow = currentUsage(now: now)
        var names = Set(usageNow.keys).union(policy.users.keys)
        var holding: [String: Holding] = [:]
        for id in running {
            guard let job = jobs[id] else { continue }
            names.insert(job.user)
            holding[job.user, default: Holding()].gpus += job.request.totalGPUs
            holding[job.user, default: Holding()].jobs += 1
        }
        for (user, count) in pendingByUser where count > 0 { names.insert(user) }
        let factors = FairShare.factors(users: names, usage: usageNow, policy: policy)
        let standings = names.sorted().map { name in
            PolicyReport.UserStanding(name: name, account: policy.account(of: name), shares: policy.shares(of: name),
                                      limits: policy.limits(of: name), usageGPUHours: (usageNow[name] ?? 0) / 3600,
                                      fairShare: factors[name] ?? 1, runningJobs: holding[name]?.jobs ?? 0,
                                      gpusInUse: holding[name]?.gpus ?? 0, pendingJobs: pendingByUser[name] ?? 0)
        }
        return PolicyReport(policy: policy, users: standings)
    }
}

extension MasterState {
    /// The policy's order and times from a reloaded config file (SIGHUP); accounts and users stay as admins set them.
    public func setPolicyTimes(_ reloaded: SharingPolicy) {
        policy.order = reloaded.order
        policy.defaultTime = reloaded.defaultTime
        policy.maxTime = reloaded.maxTime
        policy.halfLife = reloaded.halfLife
        policy.ageScale = reloaded.ageScale
        scheduleNeeded = true
        logger.info("policy reloaded", metadata: ["policy": "\(policy.order.rawValue)",
                                                  "default_time": "\(policy.defaultTime.map { "\(Int($0))s" } ?? "none")"])
        schedule()
    }
}
