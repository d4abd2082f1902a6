/// A job's accounting record (Slurm's sacct fields, and what Slurm does not measure): GPU-seconds held, and from the
/// nodes' telemetry while it ran: energy, mean and peak GPU utilisation, peak GPU memory. Kept with the job when it ends.
public struct JobUsage: Codable, Sendable, Hashable {
    /// GPUs held × seconds, over every run (a requeued job's earlier runs too).
    public var gpuSeconds: Double = 0
    /// Its GPUs' power integrated over the time sampled, in watt-hours.
    public var energyWh: Double = 0
    /// Σ utilisation (0-1) × seconds over its GPUs, and the GPU-seconds sampled: their ratio is the mean utilisation.
    public var busyGPUSeconds: Double = 0
    public var sampledGPUSeconds: Double = 0
    /// Highest utilisation (percent) and memory (MiB) one of its GPUs reported.
    public var peakUtilization: Double?
    public var peakMemoryMB: Int?
    /// The models of the GPUs it ran on ("NVIDIA A100-SXM4-80GB"), once each.
    public var gpuModels: [String]?
    /// Its GPUs' mean utilisation and peak memory over time (at most `UsageSeries.maxPoints` points).
    public var series: UsageSeries?

    public init() {}

    /// Mean utilisation of its GPUs while sampled, in percent; nil before any sample.
    public var meanUtilization: Double? { sampledGPUSeconds > 0 ? 100 * busyGPUSeconds / sampledGPUSeconds : nil }

    /// Adds `seconds` of its GPUs as one telemetry sample reported them (the time since the node's previous sample).
    public mutating func add(_ gpus: [GPUTelemetry], seconds: Double) {
        guard seconds > 0, seconds.isFinite else { return }
        for gpu in gpus {
            // Readings no GPU could give (a faulty agent) count for nothing.
            if let watts = gpu.powerW, watts.isFinite, watts >= 0, watts <= 10_000 { energyWh += watts * seconds / 3600 }
            if let utilization = gpu.utilization, utilization.isFinite {
                let percent = min(100, max(0, utilization))
                busyGPUSeconds += percent / 100 * seconds
                sampledGPUSeconds += seconds
                peakUtilization = max(peakUtilization ?? 0, percent)
            }
            if let memory = gpu.memoryUsedMB, memory >= 0, memory <= 100_000_000 { peakMemoryMB = max(peakMemoryMB ?? 0, memory) }
        }
    }

    /// Adds a point to the series: its GPUs on one node as a sample at `time` reported them.
    public mutating func record(_ gpus: [GPUTelemetry], at time: Double) {
        let utilizations = gpus.compactMap(\.utilization).filter(\.isFinite)
        guard !utilizations.isEmpty, time.isFinite else { return }
        let memory = gpus.compactMap(\.memoryUsedMB).filter { $0 >= 0 && $0 <= 100_000_000 }.max() ?? 0
        var points = series ?? UsageSeries()
        points.append(time: time, utilization: min(100, max(0, utilizations.reduce(0, +) / Double(utilizations.count))),
                      memoryMB: Double(memory))
        series = points
    }

    /// This record and `other` together (samples taken in another run, or not yet folded in).
    public func merged(_ other: JobUsage) -> JobUsage {
        var result = self
        result.gpuSeconds += other.gpuSeconds
        result.energyWh += other.energyWh
        result.busyGPUSeconds += other.busyGPUSeconds
        result.sampledGPUSeconds += other.sampledGPUSeconds
        if let peak = other.peakUtilization { result.peakUtilization = max(result.peakUtilization ?? 0, peak) }
        if let peak = other.peakMemoryMB { result.peakMemoryMB = max(result.peakMemoryMB ?? 0, peak) }
        if let models = other.gpuModels { result.gpuModels = Array(Set((result.gpuModels ?? []) + models)).sorted() }
        if let points = other.series {
            var all = result.series ?? UsageSeries()
            for i in points.times.indices {
                all.append(time: points.times[i], utilization: points.utilization[i], memoryMB: points.memoryMB[i])
            }
            result.series = all
        }
        return result
    }
}

/// A job's GPUs over time: mean utilisation (percent) and peak memory (MiB) per sample, in time order, halved by
/// averaging neighbours whenever it grows past `maxPoints` (a long job's older points are coarser).
public struct UsageSeries: Codable, Sendable, Hashable {
    public static let maxPoints = 120
    public var times: [Double] = []
    public var utilization: [Double] = []
    public var memoryMB: [Double] = []

    public init() {}

    public mutating func append(time: Double, utilization u: Double, memoryMB m: Double) {
        var at = times.endIndex
        while at > times.startIndex && times[at - 1] > time { at -= 1 }
        // Rounded (to the second, 0.1 %, the MiB): a stored job's series stays a few KB.
        times.insert(time.rounded(), at: at)
        utilization.insert((u * 10).rounded() / 10, at: at)
        memoryMB.insert(m.rounded(), at: at)
        guard times.count > Self.maxPoints else { return }
        var t: [Double] = [], us: [Double] = [], ms: [Double] = []
        var i = 0
        while i < times.count {
            let j = min(i + 1, times.count - 1)
            t.append(((times[i] + times[j]) / 2).rounded())
            us.append(((utilization[i] + utilization[j]) / 2 * 10).rounded() / 10)
            ms.append(max(memoryMB[i], memoryMB[j]))
            i += 2
        }
        (times, utilization, memoryMB) = (t, us, ms)
    }
}
