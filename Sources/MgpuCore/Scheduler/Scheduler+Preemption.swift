extension Scheduler {
    /// How many waiting jobs preemption looks at in one pass.
    public static let preemptionDepth = 100

    /// Which running `--preemptible` jobs to stop so that waiting jobs that are not preemptible can start, as
    /// Slurm's preemption does it: the waiting jobs in priority order; for each, GPUs that are free (or held by jobs
    /// already being stopped) first; else the preemptible jobs of lowest priority (of equal ones, the last started)
    /// are added until it fits, and then any it can do without are left running. A job that could not start even with
    /// every preemptible job stopped is skipped. A job after the reserved one stops nothing on the reserved GPUs unless
    /// it ends before the reservation, as in backfill.
    static func preemptions(for waiting: [PendingJob], state: PassState, context: PolicyContext,
                            reserved: JobID?) -> [Plan.Preemption] {
        var candidates = context.preemptible.filter { !$0.stopping }
            .sorted { ($0.priority, -$0.start, $0.id) < ($1.priority, -$1.start, $1.id) }
        guard !candidates.isEmpty, !waiting.isEmpty else { return [] }
        let nodes = state.nodes
        func gpus(_ job: PreemptibleJob) -> [(Int, [Int])] {
            job.parts.compactMap { part in state.index[part.nodeId].map { ($0, part.gpus) } }
        }
        // Free now: neither busy (this pass's starts included) nor reserved; plus what jobs being stopped hold.
        var free = nodes.indices.map { n in nodes[n].schedulable ? Set(nodes[n].gpus).subtracting(nodes[n].busyGPUs) : [] }
        for job in context.preemptible where job.stopping {
            for (n, g) in gpus(job) where nodes[n].schedulable { free[n].formUnion(g) }
        }
        var result: [Plan.Preemption] = []
        for job in waiting.prefix(preemptionDepth) where !job.request.isCPUOnly && !candidates.isEmpty {
            // After the reserved job: keep off its GPUs unless it ends before the reservation starts.
            var off = Array(repeating: Set<Int>(), count: nodes.count)
            if let shadow = state.shadow {
                let limit = context.policy.timeLimit(job.timeLimit)
                let endsInTime = limit.isFinite && context.now + limit + context.slack <= state.shadowTime
                if !endsInTime && !shadow.allSatisfy(\.isEmpty) && job.id != reserved { off = shadow }
            }
            func fits(_ free: [Set<Int>]) -> [Set<Int>]? {
                state.fit(job.request, free: free.indices.map { free[$0].subtracting(off[$0]) })
            }
            if let taken = fits(free) {
                for n in taken.indices { free[n].subtract(taken[n]) }
                continue
            }
            // Not even with every preemptible job stopped: nothing to stop for it.
            var everything = free
            for candidate in candidates {
                for (n, g) in gpus(candidate) where nodes[n].schedulable { everything[n].formUnion(g) }
            }
            guard fits(everything) != nil else { continue }
            var trial = free
            var chosen: [PreemptibleJob] = []
            var placed: [Set<Int>]?
            for candidate in candidates {
                for (n, g) in gpus(candidate) where nodes[n].schedulable { trial[n].formUnion(g) }
                chosen.append(candidate)
                if let taken = fits(trial) {
                    placed = taken
                    break
                }
            }
            guard placed != nil else { continue }
            // Leave running those it can do without (the last one added was needed: it fitted only then).
            for candidate in chosen.dropLast().reversed() {
                var without = free
                for other in chosen where other.id != candidate.id {
                    for (n, g) in gpus(other) where nodes[n].schedulable { without[n].formUnion(g) }
                }
                if let taken = fits(without) {
                    chosen.removeAll { $0.id == candidate.id }
                    trial = without
                    placed = taken
                }
            }
            for n in placed!.indices { trial[n].subtract(placed![n]) }
            free = trial
            let stopped = Set(chosen.map(\.id))
            candidates.removeAll { stopped.contains($0.id) }
            result += chosen.map { Plan.Preemption(victim: $0.id, forJob: job.id) }
        }
        return result
    }
}
