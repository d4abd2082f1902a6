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
        return result
    }
}
