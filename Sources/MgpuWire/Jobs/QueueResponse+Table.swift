public import MgpuCore

extension QueueResponse {
    /// The listing `mgpu queue` prints: jobs, then nodes.
    public func renderTable() -> String {
        let queue = self
        var jobs = Table(header: ["JOBID", "NAME", "USER", "STATE", "GPUS", "ELAPSED", "TIME LEFT", "REASON"])
        for job in queue.jobs {
            let elapsed: String
            switch job.state {
            case .pending: elapsed = formatElapsed(queue.now - job.submitTime)
            case .running: elapsed = formatElapsed(queue.now - (job.startTime ?? queue.now))
            default: elapsed = formatElapsed((job.endTime ?? queue.now) - (job.startTime ?? job.endTime ?? queue.now))
            }
            var gpus = job.parts.isEmpty
                ? (job.request.pinned != nil ? "pinned" : "\(job.request.totalGPUs)")
                : job.placementText
            if job.request.distributed { gpus += " (distributed)" }
            var reason = job.note ?? job.reason ?? ""
            if job.state.isTerminal, let exit = job.exit, job.state != .nodeFail { reason = job.reason ?? exit.summary }
            if let n = job.requeues, n > 0 { reason += reason.isEmpty ? "requeued \(n)×" : " (requeued \(n)×)" }
            let state = job.state == .running && job.note?.hasPrefix("node not responding") == true ? "RUNNING*" : job.state.rawValue
            var left = "-"
            if let limit = job.timeLimit {
                switch job.state {
                case .pending: left = formatElapsed(limit)
                case .running: left = formatElapsed(max(0, limit - (queue.now - (job.startTime ?? queue.now))))
                default: break
                }
            }
            // An array's record: the tasks not started, on one line ("3F2A9C01_[10-99%8]").
            var id = job.array.map { job.id.rawValue + "_" + $0.pendingText } ?? job.id.rawValue
            if id.count > 48 { id = id.prefix(46) + "…]" }
            jobs.rows.append([id, String(job.name.prefix(24)), job.user, state, gpus, elapsed, left, reason])
        }
        var nodes = Table(header: ["NODE", "ADDRESS", "STATE", "GPUS", "FREE", "BUSY", "CPU-SLOTS", "HEARTBEAT"])
        for node in queue.nodes {
            let sim = node.simulated ? " (simulated)" : ""
            nodes.rows.append([node.id, node.address, node.state.rawValue + (node.drainState.map { ", " + $0 } ?? ""), "\(node.gpus.count)\(sim)",
                               node.state == .up ? "\(node.freeGPUCount)" : "-", "\(node.busyGPUs.count)",
                               "\(node.cpuSlotsUsed)/\(node.cpuSlots)", "\(Int(node.secondsSinceHeartbeat))s ago"])
        }
        var out = queue.jobs.isEmpty ? "No jobs." : jobs.render()
        out += "\n\n" + (queue.nodes.isEmpty ? "No nodes registered." : nodes.render())
        if queue.jobs.contains(where: { $0.note?.hasPrefix("node not responding") == true }) {
            out += "\n\nRUNNING*: running, node not responding (the job keeps its GPUs until the node is back or lost)"
        }
        return out
    }
}
