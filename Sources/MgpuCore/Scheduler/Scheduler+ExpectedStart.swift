extension Scheduler {
    /// How many waiting jobs get an expected start (Slurm's bf_max_job_test, whose default this was, bounds its estimates too).
    public static let expectedStartDepth = 100

    /// When each waiting job is expected to start at the latest (`squeue --start`), from the same inputs as the policy
    /// pass: the queue in the pass's order, each job at the earliest time enough GPUs are free for its whole time
    /// limit, by the running jobs' time limits and the time planned for the jobs before it (a later, shorter job may
    /// fit in a gap before them: backfill); the jobs the pass started hold theirs from now. GPUs that running preemptible jobs hold count as free now for jobs that are not
    /// preemptible (they would be stopped). Jobs in `skip` (held by a limit, or started) get none; nor does a job that
    /// could never fit, nor one that needs no GPU. Only the first `depth` jobs are looked at.
    public static func expectedStarts(queue: [PendingJob], nodes: [NodeCapacity], running: [RunningPart],
                                      preemptible: [Plan.Placement] = [], started: [(Plan.Assignment, Double)] = [],
                                      skip: Set<JobID> = [], now: Double, policy: SharingPolicy,
                                      depth: Int = expectedStartDepth) -> [JobID: Double] {
        let state = PassState(nodes: nodes)
        // When each GPU is free, per node index; busy GPUs nothing here knows the end of: never.
        var freeAt: [[Int: Double]] = nodes.map { node in
            guard node.schedulable else { return [:] }
            return Dictionary(uniqueKeysWithValues: node.gpus.map { ($0, node.busyGPUs.contains($0) ? Double.infinity : now) })
        }
        func set(_ nodeId: String, _ gpus: [Int], _ time: Double) {
            guard let n = state.index[nodeId] else { return }
            for g in gpus where freeAt[n][g] != nil { freeAt[n][g] = time }
        }
        for part in running { set(part.nodeId, part.gpus, part.end) }
        for (assignment, end) in started { for part in assignment.parts { set(part.nodeId, part.gpus, end) } }
        var spare: Set<GPURef> = []
        for part in preemptible {  // being stopped or not: either way free for a job that is not preemptible
            guard let n = state.index[part.nodeId] else { continue }
            for g in part.gpus where freeAt[n][g] != nil { spare.insert(GPURef(node: n, gpu: g)) }
        }
        /// Time planned for the jobs before, per GPU: [start, end) intervals.
        var claims: [GPURef: [(Double, Double)]] = [:]
        var result: [JobID: Double] = [:]
        var looked = 0
        // Every GPU of the nodes that take work: a request that cannot fit even on all of them gets no estimate.
        let everything = nodes.map { $0.schedulable ? Set($0.gpus) : [] }
        // A bound on the work, whatever the queue and the cluster hold: GPUs looked at, in all. Jobs after it is spent
        // get no estimate.
        var budget = 5_000_000
        // The pass's order: jobs that are not preemptible first.
        for job in queue.filter({ !$0.preemptible }) + queue.filter(\.preemptible)
        where !skip.contains(job.id) && !job.request.isCPUOnly {
            looked += 1
            if looked > depth || budget <= 0 { break }
            guard state.fit(job.request, free: everything) != nil else { continue }
            let length = policy.timeLimit(job.timeLimit)
            // When each GPU is free at the earliest for this job (before any time planned for another).
            var base: [(GPURef, Double)] = []
            var candidates: Set<Double> = []
            for n in freeAt.indices {
                for (g, at) in freeAt[n] {
                    let ref = GPURef(node: n, gpu: g)
                    let when = max(now, !job.preemptible && spare.contains(ref) ? now : at)
                    guard when.isFinite else { continue }
                    base.append((ref, when))
                    candidates.insert(when)
                    for claim in claims[ref] ?? [] where claim.1.isFinite && claim.1 > when { candidates.insert(claim.1) }
                }
            }
            let need = job.request.totalGPUs
            let bases = base.map(\.1).sorted()
            guard bases.count >= need else { continue }
            let earliest = bases[need - 1]  // before then, fewer than `need` GPUs are free at all
            for t in candidates.sorted() where t >= earliest {
                budget -= base.count
                if budget < 0 { break }
                var free = Array(repeating: Set<Int>(), count: nodes.count)
                var count = 0
                for (ref, when) in base where when <= t {
                    // Free over [t, t + length): no time planned for another job overlaps it.
                    if let planned = claims[ref], planned.contains(where: { $0.0 < t + length && t < $0.1 }) { continue }
                    free[ref.node].insert(ref.gpu)
                    count += 1
                }
                guard count >= need else { continue }
                guard let taken = state.fit(job.request, free: free) else { continue }
                result[job.id] = t
                for n in taken.indices {
                    for g in taken[n] { claims[GPURef(node: n, gpu: g), default: []].append((t, t + length)) }
                }
                break
            }
        }
        return result
    }

    struct GPURef: Hashable {
        var node: Int
        var gpu: Int
    }
}
