public import MgpuCore
import Foundation

/// What `mgpu report` (sreport) groups ended jobs by.
public enum ReportGrouping: String, Codable, Sendable, CaseIterable {
    case user, account, node
    case gpuType = "gpu-type"
}

/// `GET /v1/report`: ended jobs of a period, summed per user, account, node or GPU model.
public struct ReportResponse: Codable, Sendable, Equatable {
    public var since: Double
    public var until: Double
    public var by: ReportGrouping
    public var rows: [Row]

    public struct Row: Codable, Sendable, Equatable {
        public var key: String
        public var jobs: Int
        public var gpuHours: Double
        public var energyKWh: Double
        /// Mean utilisation of the GPUs its jobs held (weighted by GPU-hours sampled); nil without samples.
        public var meanUtilization: Double?
        public var waitMean: Double
        public var waitP95: Double
        /// Jobs that ended FAILED, TIMEOUT or NODE_FAIL.
        public var failures: Int
    }

    public init(since: Double, until: Double, by: ReportGrouping, rows: [Row]) {
        self.since = since
        self.until = until
        self.by = by
        self.rows = rows
    }

    /// Sums `records` per key, most GPU-hours first. A job on several nodes counts on each, its GPU-hours and energy
    /// split by the GPUs it held there; a job without GPUs is "cpu" by GPU type.
    public init(records: [HistoryRecord], since: Double, until: Double, by: ReportGrouping) {
        struct Sum {
            var jobs = 0, gpuHours = 0.0, energyWh = 0.0, busy = 0.0, sampled = 0.0, failures = 0
            var waits: [Double] = []
        }
        var sums: [String: Sum] = [:]
        for r in records {
            var shares: [(String, Double)]
            switch by {
            case .user: shares = [(r.user, 1)]
            case .account: shares = [(r.account, 1)]
            case .gpuType: shares = [(r.gpuModels.first ?? (r.gpus == 0 ? "cpu" : "unknown"), 1)]
            case .node:
                let parts = r.nodeGPUs.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                let total = parts.reduce(0) { $0 + $1.1 }
                shares = parts.map { ($0.0, total > 0 ? Double($0.1) / Double(total) : 1 / Double(parts.count)) }
                if shares.isEmpty { shares = [("-", 1)] }
            }
            for (key, share) in shares {
                var sum = sums[key] ?? Sum()
                sum.jobs += 1
                sum.gpuHours += r.gpuHours * share
                sum.energyWh += (r.energyWh ?? 0) * share
                if let mean = r.meanUtilization {
                    sum.busy += mean / 100 * r.gpuHours * share
                    sum.sampled += r.gpuHours * share
                }
                if let wait = r.wait { sum.waits.append(wait) }
                if [.failed, .timeout, .nodeFail].contains(r.state) { sum.failures += 1 }
                sums[key] = sum
            }
        }
        rows = sums.map { key, sum in
            let waits = sum.waits.sorted()
            let p95 = waits.isEmpty ? 0 : waits[min(waits.count - 1, Int((Double(waits.count) * 0.95).rounded(.up)) - 1)]
            return Row(key: key, jobs: sum.jobs, gpuHours: sum.gpuHours, energyKWh: sum.energyWh / 1000,
                       meanUtilization: sum.sampled > 0 ? 100 * sum.busy / sum.sampled : nil,
                       waitMean: waits.isEmpty ? 0 : waits.reduce(0, +) / Double(waits.count), waitP95: p95, failures: sum.failures)
        }.sorted { ($0.gpuHours, $1.key) > ($1.gpuHours, $0.key) }
        self.since = since
        self.until = until
        self.by = by
    }

    public func renderTable() -> String {
        var table = Table(header: [by.rawValue.uppercased(), "JOBS", "GPU-HOURS", "ENERGY", "UTIL", "WAIT MEAN", "WAIT P95", "FAILED"])
        for row in rows {
            table.rows.append([row.key, "\(row.jobs)", String(format: "%.1f", row.gpuHours), String(format: "%.2f kWh", row.energyKWh),
                               row.meanUtilization.map { String(format: "%.0f %%", $0) } ?? "-", formatElapsed(row.waitMean),
                               formatElapsed(row.waitP95), "\(row.failures)"])
        }
        return table.render()
    }

    public func renderCSV() -> String {
        var lines = ["\(by.rawValue),jobs,gpu_hours,energy_kwh,mean_util,wait_mean,wait_p95,failures"]
        for row in rows {
            lines.append([HistoryResponse.csvField(row.key), "\(row.jobs)", String(format: "%.4f", row.gpuHours),
                          String(format: "%.4f", row.energyKWh), row.meanUtilization.map { String(format: "%.1f", $0) } ?? "",
                          String(format: "%.1f", row.waitMean), String(format: "%.1f", row.waitP95), "\(row.failures)"].joined(separator: ","))
        }
        return lines.joined(separator: "\n")
    }
}
