import MgpuCore

extension NvidiaSMI {
    public static let telemetryArguments = [
        "--query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw", "--format=csv,noheader,nounits",
    ]
    public static let computeAppsArguments = ["--query-compute-apps=gpu_uuid,pid,used_memory", "--format=csv,noheader,nounits"]

    /// A number, or nil for "[N/A]", "[Not Supported]", "N/A" and anything else that is not one.
    static func number(_ field: String) -> Double? {
        let text = field.trimmingSpaces
        guard !text.hasPrefix("["), let value = Double(text), value.isFinite else { return nil }
        return value
    }

    /// Parses the `--query-gpu=index,utilization.gpu,...` lines; lines without a valid index are skipped.
    public static func parseTelemetry(_ output: String) -> [GPUTelemetry] {
        output.split(whereSeparator: \.isNewline).compactMap { raw in
            let f = raw.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 6, let index = Int(f[0].trimmingSpaces), index >= 0 else { return nil }
            return GPUTelemetry(index: index, utilization: number(f[1]), memoryUsedMB: number(f[2]).map { Int($0) },
                                memoryTotalMB: number(f[3]).map { Int($0) }, temperatureC: number(f[4]), powerW: number(f[5]))
        }
    }

    /// Parses `--query-compute-apps=gpu_uuid,pid,used_memory` into (uuid, pid, memory MB).
    public static func parseComputeApps(_ output: String) -> [(uuid: String, pid: Int, memoryMB: Int)] {
        output.split(whereSeparator: \.isNewline).compactMap { raw in
            let f = raw.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
            guard f.count == 3, f[0].hasPrefix("GPU-") || f[0].hasPrefix("MIG-"), let pid = Int(f[1]), pid > 0 else { return nil }
            return (f[0], pid, number(f[2]).map { Int($0) } ?? 0)
        }
    }
}
