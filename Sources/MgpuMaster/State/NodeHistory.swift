import MgpuWire
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

extension NodeHistory {
    /// The readings since `since`, averaged into at most `points` points (readings that are missing are left out).
    func series(node: String, since: Double, points: Int) -> NodeHistoryResponse {
        let all = times.elements
        let start = all.firstIndex { $0 >= since } ?? all.count
        let n = all.count - start
        let bucket = max(1, Int((Double(n) / Double(max(1, points))).rounded(.up)))
        func averaged(_ values: [Float]) -> [Double?] {
            let slice = Array(values.suffix(n))
            return stride(from: 0, to: slice.count, by: bucket).map { i in
                let chunk = slice[i..<min(slice.count, i + bucket)].filter { !$0.isNaN && $0 >= 0 }
                return chunk.isEmpty ? nil : Double(chunk.reduce(0, +)) / Double(chunk.count)
            }
        }
        let sampled = stride(from: start, to: all.count, by: bucket).map { all[$0] }
        let gpus = gpuUtilization.keys.sorted().map { index in
            NodeHistoryResponse.GPUSeries(index: index, utilization: averaged(gpuUtilization[index]?.elements ?? []),
                                          memoryUsedMB: averaged(gpuMemory[index]?.elements ?? []))
        }
        return NodeHistoryResponse(node: node, times: sampled, cpuPercent: averaged(cpu.elements),
                                   memoryUsedMB: averaged(memory.elements), gpus: gpus)
    }
}
