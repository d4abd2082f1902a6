import MgpuCore

/// The last hour (720 samples at the default 5 s report interval) of one node's readings, in fixed-size ring
/// buffers: 8 bytes for the time, 4 bytes for each of CPU and memory, and 4 bytes for each of a GPU's
/// utilisation and memory per sample: about 12 KB per node plus 6 KB per GPU.
struct NodeHistory {
    static let capacity = 720
    var times = RingBuffer<Double>(capacity: capacity)
    var cpu = RingBuffer<Float>(capacity: capacity)
    var memory = RingBuffer<Float>(capacity: capacity)
    var gpuUtilization: [Int: RingBuffer<Float>] = [:]
    var gpuMemory: [Int: RingBuffer<Float>] = [:]

    mutating func append(_ t: NodeTelemetry) {
        times.append(t.time)
        cpu.append(Float(t.cpuPercent ?? .nan))
        memory.append(Float(t.memoryUsedMB ?? -1))
        for gpu in t.gpus {
            gpuUtilization[gpu.index, default: RingBuffer(capacity: Self.capacity)].append(Float(gpu.utilization ?? .nan))
            gpuMemory[gpu.index, default: RingBuffer(capacity: Self.capacity)].append(Float(gpu.memoryUsedMB ?? -1))
        }
    }
}
