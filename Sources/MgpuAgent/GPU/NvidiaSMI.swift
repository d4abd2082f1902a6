import MgpuCore
import MgpuSupervisor

/// GPU discovery through `nvidia-smi`.
public enum NvidiaSMI {
    public static let queryArguments = ["--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"]

    public struct Parsed: Equatable, Sendable {
        public var gpus: [GPU]
        /// Lines that could not be read, quoted for the log.
        public var rejected: [String]
    }

    /// Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`.
    /// A line is `INDEX, UUID, NAME, MEMORY_MB`; a name may itself contain commas. Lines that do not
    /// fit (error messages, "No devices were found", "[N/A]" memory) are rejected, not guessed at.
    public static func parse(_ output: String) -> Parsed {
        var result = Parsed(gpus: [], rejected: [])
        for raw in output.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingSpaces
            guard !line.isEmpty else { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
            guard fields.count >= 4,
                  let index = Int(fields[0]), index >= 0,
                  fields[1].hasPrefix("GPU-") || fields[1].hasPrefix("MIG-"),
                  let memory = Int(fields[fields.count - 1]), memory >= 0 else {
                if !line.lowercased().contains("no devices were found") { result.rejected.append(line) }
                continue
            }
            let name = fields[2..<(fields.count - 1)].joined(separator: ", ")
            guard !name.isEmpty, !result.gpus.contains(where: { $0.index == index }) else {
                result.rejected.append(line)
                continue
            }
            result.gpus.append(GPU(index: index, uuid: fields[1], name: name, memoryMB: memory))
        }
        result.gpus.sort { $0.index < $1.index }
        return result
    }

    public enum Outcome: Sendable {
        case found(Parsed)
        /// nvidia-smi is not installed.
        case notInstalled
        /// It ran but failed (driver not loaded, ...), with its message.
        case failed(String)
    }

    /// Runs nvidia-smi (`path`, or the first `nvidia-smi` in PATH).
    public static func discover(path: String? = nil) -> Outcome {
        let program = path ?? Spawn.findInPath("nvidia-smi")
        guard let program else { return .notInstalled }
        do {
            let (status, output) = try Spawn.capture([program] + queryArguments, timeout: 30)
            guard status == 0 else {
                let first = output.split(whereSeparator: \.isNewline).first.map(String.init) ?? "exit status \(status)"
                return .failed("nvidia-smi failed: \(first)")
            }
            return .found(parse(output))
        } catch {
            return .failed("\(error)")
        }
    }
}

/// GPUs a node offers.
public enum GPUDiscovery {
    public static func simulated(_ count: Int, node: String, model: String = "Simulated GPU", memoryMB: Int = 24576) -> [GPU] {
        (0..<count).map { GPU(index: $0, uuid: "SIM-\(node)-\($0)", name: model, memoryMB: memoryMB, simulated: true) }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
