import CoreMetrics
import Foundation
import MgpuCore
import MgpuWire
import Prometheus
import Synchronization

/// The master's Prometheus metrics. Gauges describing the cluster are set from the master's state at each
/// scrape; the scheduling-latency histogram is observed as jobs start; API request counts and durations come
/// from Hummingbird's MetricsMiddleware through swift-metrics into the same registry.
public final class MasterMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let schedulingLatency: ValueHistogram
    /// Connections the HTTP server accepted (agents that keep theirs open add few).
    let connectionsOpened: Prometheus.Counter
    /// What each per-user counter was last brought to (a counter only goes up: each scrape adds the difference).
    private let exported = Mutex<[String: Double]>([:])
    /// The allocation series (and users holding GPUs) of the last scrape: those that ended are removed, not left at 0.
    private let allocations = Mutex<[Allocation: Prometheus.Gauge]>([:])
    private let holders = Mutex<Set<String>>([])

    /// One GPU held by one job: the labels of `mgpu_gpu_allocation`.
    public struct Allocation: Hashable, Sendable {
        public let node: String
        public let gpu: Int
        public let job: String
        public let user: String
        public init(node: String, gpu: Int, job: String, user: String) {
            self.node = node; self.gpu = gpu; self.job = job; self.user = user
        }
    }

    public init() {
        schedulingLatency = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(namespace: "mgpu", metricName: "scheduling_latency", unitName: "seconds",
                                             helpText: "Time from submission to start of jobs"),
            buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600, 14400, 86400])
        connectionsOpened = registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: "mgpu", metricName: "http_connections_opened", unitName: "total",
                                             helpText: "Connections the HTTP server accepted"))
    }

    /// Routes swift-metrics (used by Hummingbird's MetricsMiddleware) into this registry. Once per process.
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(MgpuMetricsFactory(registry: registry))
    }

    /// Brings the counter `mgpu_NAME_total{user}` up to `value` (never down: a smaller value, after a master restart
    /// elsewhere, adds nothing).
    func counterTo(_ name: String, _ help: String, user: String, _ value: Double) {
        let key = name + "\u{0}" + user
        let add = exported.withLock { exported -> Double in
            let before = exported[key] ?? 0
            guard value > before else { return 0 }
            exported[key] = value
            return value - before
        }
        let counter = registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "mgpu", metricName: name, unitName: "total",
                                                                           helpText: help), labels: [("user", user)])
        if add > 0 { counter.increment(by: add) }
    }

    func gauge(_ name: String, _ unit: String, _ help: String, _ labels: [(String, String)] = []) -> Prometheus.Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "mgpu", metricName: name, unitName: unit, helpText: help),
                           labels: labels)
    }

    /// Sets every cluster gauge from a queue snapshot and returns the exposition text.
    public func render(jobs: [JobState: Int], nodes: [NodeInfo], idleJobs: Int = 0, idleGPUs: Int = 0,
                       users: [String: JobUsage] = [:], allocated: [Allocation] = []) -> [UInt8] {
        setAllocations(allocated)
        gauge("jobs_idle", "", "Running jobs marked idle (GPUs below the idle threshold for --idle-after)").set(Double(idleJobs))
        gauge("gpus_idle_held", "", "GPUs held by jobs marked idle").set(Double(idleGPUs))
        for (user, total) in users {
            // Counters since the master started: increased by what was added since the last scrape.
            counterTo("user_gpu_seconds", "GPU-seconds held by the user's jobs", user: user, total.gpuSeconds)
            counterTo("user_energy_joules", "Energy of the GPUs the user's jobs held", user: user, total.energyWh * 3600)
        }
        for state in JobState.allCases {
            gauge("jobs", "", "Jobs by state", [("state", state.rawValue)]).set(Double(jobs[state] ?? 0))
        }
        var gpuStates = ["free": 0, "allocated": 0, "outside": 0, "unhealthy": 0, "down": 0]
        for node in nodes {
            let labels = [("node", node.id)]
            if node.state == .down {
                gpuStates["down", default: 0] += node.gpus.count
            } else {
                gpuStates["outside", default: 0] += node.outsideGPUs.count
                gpuStates["unhealthy", default: 0] += (node.unhealthyGPUs ?? []).count
                gpuStates["allocated", default: 0] += node.allocatedGPUs.count
                gpuStates["free", default: 0] += node.freeGPUCount
            }
            gauge("node_up", "", "1 when the node's agent reports in", labels).set(node.state == .up ? 1.0 : 0.0)
            gauge("node_drained", "", "1 when the node takes no new jobs (drained by an admin or by its health check)", labels)
                .set(node.drain == nil ? 0.0 : 1.0)
            guard let t = node.telemetry else { continue }
            if let cpu = t.cpuPercent { gauge("node_cpu_utilization", "percent", "CPU utilisation", labels).set(cpu) }
            if let used = t.memoryUsedMB { gauge("node_memory_used", "bytes", "RAM in use", labels).set(Double(used) * 1_048_576) }
            if let total = t.memoryTotalMB { gauge("node_memory_total", "bytes", "RAM in all", labels).set(Double(total) * 1_048_576) }
            for reading in t.gpus {
                guard let gpu = node.gpus.first(where: { $0.index == reading.index }) else { continue }
                let g = [("node", node.id), ("gpu", String(gpu.index)), ("uuid", gpu.uuid)]
                if let v = reading.utilization { gauge("gpu_utilization", "percent", "GPU utilisation", g).set(v) }
                if let v = reading.memoryUsedMB { gauge("gpu_memory_used", "bytes", "GPU memory in use", g).set(Double(v) * 1_048_576) }
                if let v = reading.memoryTotalMB { gauge("gpu_memory_total", "bytes", "GPU memory in all", g).set(Double(v) * 1_048_576) }
                if let v = reading.temperatureC { gauge("gpu_temperature", "celsius", "GPU temperature", g).set(v) }
                if let v = reading.powerW { gauge("gpu_power", "watts", "GPU power draw", g).set(v) }
                gauge("gpu_healthy", "", "0 when the node reports the GPU unhealthy (nvidia-smi health readings, XID errors): it gets no new jobs", g)
                    .set(reading.unhealthy == nil ? 1.0 : 0.0)
            }
        }
        for (state, count) in gpuStates {
            gauge("gpus", "", "GPUs by state", [("state", state)]).set(Double(count))
        }
        return registry.emitToBuffer()
    }

    /// `mgpu_gpu_allocation{node,gpu,job,user} 1` for each GPU a running job holds (an info series: join it to the
    /// per-GPU series on node and gpu to see who holds what), and `mgpu_user_gpus{user}`, the GPUs each user holds
    /// (0 once a user that held some holds none).
    func setAllocations(_ now: [Allocation]) {
        let help = "1 for each GPU a running job holds, labelled with the job and its user"
        allocations.withLock { current in
            for (allocation, gauge) in current where !now.contains(allocation) {
                registry.unregisterGauge(gauge)
                current[allocation] = nil
            }
            for allocation in now where current[allocation] == nil {
                let series = gauge("gpu_allocation", "", help, [("node", allocation.node), ("gpu", String(allocation.gpu)),
                                                             ("job", allocation.job), ("user", allocation.user)])
                series.set(1.0)
                current[allocation] = series
            }
        }
        var held: [String: Int] = [:]
        for allocation in now { held[allocation.user, default: 0] += 1 }
        holders.withLock { known in
            known.formUnion(held.keys)
            for user in known {
                gauge("user_gpus", "", "GPUs held by the user's running jobs", [("user", user)]).set(Double(held[user] ?? 0))
            }
        }
    }
}
