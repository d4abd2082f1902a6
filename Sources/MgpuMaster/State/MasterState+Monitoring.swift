import Foundation
import MgpuCore
import MgpuWire

extension MasterState {
    /// What the dashboard shows: active jobs and those ended in the last hour (the newest 50), nodes, history.
    public func dashboardSnapshot() -> DashboardSnapshot {
        let now = clock()
        let active = jobs.values.filter { !$0.state.isTerminal }
        let ended = jobs.values.filter { $0.state.isTerminal && now - ($0.endTime ?? 0) <= 3600 }
            .sorted { ($0.endTime ?? 0) < ($1.endTime ?? 0) }.suffix(50)
        let shown = (active + ended).sorted { $0.seq < $1.seq }
        var history: [String: NodeHistoryResponse] = [:]
        for id in nodes.keys { history[id] = nodeHistory(id, minutes: 15, points: 60) }
        return DashboardSnapshot(now: now, jobs: shown.map { info($0, now: now) }, nodes: nodeInfos(now: now), history: history)
    }

    /// Waits until something the dashboard shows changes, or `seconds` pass. False once the master shuts down.
    public nonisolated func waitForDashboardChange(seconds: Double) async -> Bool {
        guard !waiters.isClosed else { return false }
        await waiters.wait("dashboard", seconds: seconds)
        return !waiters.isClosed
    }

    /// The Prometheus exposition of the cluster now.
    public func metricsText() -> [UInt8] {
        var counts: [JobState: Int] = [:]
        for job in jobs.values { counts[job.state, default: 0] += 1 }
        let now = clock()
        let idle = markedIdle.compactMap { jobs[$0] }
        return metrics.render(jobs: counts, nodes: nodeInfos(now: now), idleJobs: idle.count,
                              idleGPUs: idle.reduce(0) { $0 + $1.request.totalGPUs }, users: userTotals(now: now),
                              allocated: running.compactMap { jobs[$0] }.flatMap { job in
                                  job.parts.flatMap { part in
                                      part.gpus.map { MasterMetrics.Allocation(node: part.nodeId, gpu: $0, job: job.id.rawValue, user: job.user) }
                                  }
                              })
    }

    /// The last `minutes` of a node's readings, averaged into at most `points` points.
    public func nodeHistory(_ id: String, minutes: Double, points: Int) -> NodeHistoryResponse? {
        guard nodes[id] != nil else { return nil }
        return (history[id] ?? NodeHistory()).series(node: id, since: clock() - minutes * 60, points: points)
    }
}
