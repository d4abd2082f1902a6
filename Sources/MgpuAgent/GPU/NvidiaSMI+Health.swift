import MgpuCore

/// GPU health from what the driver reports: `nvidia-smi -q` (retired pages, row remapping or a channel/TPC repair
/// pending, row remapping failed, unrepairable memory, SRAM errors past the RMA threshold, a recovery action the driver
/// asks for, volatile uncorrectable ECC errors, "GPU is lost" / "[GPU requires reset]") and the kernel's `NVRM: Xid`
/// lines. Each finding names the GPU by UUID (or by PCI bus id, which `-q` maps to a UUID).
extension NvidiaSMI {
    public static let healthArguments = ["-q"]

    /// What `nvidia-smi -q` says about each GPU.
    public struct HealthReport: Equatable, Sendable {
        /// UUID -> why the GPU is unusable (GPUs that are fine are absent).
        public var unhealthy: [String: String] = [:]
        /// UUID -> PCI bus id, lower case without the domain's leading zeros ("3b:00.0" of "00000000:3B:00.0").
        public var busIDs: [String: String] = [:]
        /// Errors printed outside any GPU's section ("Unable to determine the device handle for GPU ...: GPU is lost").
        public var deviceErrors: [DeviceError] = []
    }

    /// A GPU nvidia-smi could not reach, by the short PCI bus id the line names, and what it said.
    public struct DeviceError: Equatable, Sendable {
        public var bus: String
        public var message: String
    }

    /// "00000000:3B:00.0", "0000:3b:00" or "PCI:0000:3b:00" -> "3b:00" (bus and device; what XID lines give).
    static func shortBus(_ text: Substring) -> String {
        let parts = text.lowercased().split(separator: ":")
        guard parts.count >= 2 else { return text.lowercased() }
        let device = parts[parts.count - 1].split(separator: ".").first.map(String.init) ?? ""
        return "\(parts[parts.count - 2]):\(device)"
    }

    public static func parseHealth(_ output: String) -> HealthReport {
        var report = HealthReport()
        var uuid: String?
        var findings: [String] = []
        var stack: [(indent: Int, name: String)] = []
        func finish() {
            if let uuid, !findings.isEmpty { report.unhealthy[uuid] = findings.joined(separator: "; ") }
            uuid = nil
            findings = []
            stack = []
        }
        for raw in output.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingSpaces
            guard !line.isEmpty else { continue }
            let indent = raw.prefix { $0 == " " }.count
            if indent == 0 {
                if raw.hasPrefix("GPU "), raw.dropFirst(4).contains(":") {   // "GPU 00000000:3B:00.0": a new GPU's section
                    finish()
                    continue
                }
                // "Unable to determine the device handle for GPU 0000:3B:00.0: GPU is lost.  Reboot the system ..."
                if let range = line.range(of: "device handle for GPU") {
                    let rest = line[range.upperBound...].trimmingSpaces
                    let token = rest.split(separator: " ", maxSplits: 1).first ?? ""
                    let bus = token.hasSuffix(":") ? token.dropLast() : token
                    let message = rest.dropFirst(token.count).trimmingSpaces
                    report.deviceErrors.append(DeviceError(bus: shortBus(bus), message: message.isEmpty ? "nvidia-smi cannot reach it" : message))
                }
                continue
            }
            while let last = stack.last, last.indent >= indent { stack.removeLast() }
            let pair = line.split(separator: ":", maxSplits: 1).map { $0.trimmingSpaces }
            let key = pair[0]
            guard pair.count == 2 else {
                stack.append((indent, key))   // a sub-section's header ("ECC Errors", "Volatile")
                continue
            }
            let value = pair[1]
            let path = stack.map(\.name)
            // What processes call themselves is theirs to choose: nothing in that section says anything of the GPU.
            if path.first == "Processes" || key == "Processes" { continue }
            if key == "GPU UUID" { uuid = value }
            if key == "Bus Id", path.last == "PCI", let uuid { report.busIDs[uuid] = shortBus(Substring(value)) }
            let lower = value.lowercased()
            if lower.contains("gpu is lost") { findings.append("GPU is lost") }
            else if lower.contains("requires reset") { findings.append("GPU requires a reset") }
            if path.first == "ECC Errors", path.contains("Volatile"), let count = Int(value), count > 0,
               key.contains("Uncorrectable") || (path.last == "Double Bit" && key == "Total") {
                findings.append("\(count) volatile uncorrectable ECC error\(count == 1 ? "" : "s")\(key.contains("Uncorrectable") ? " (\(key))" : "")")
            }
            if path.first == "Retired Pages", key.hasPrefix("Pending"), value == "Yes" {
                findings.append("retired pages pending (needs a GPU reset)")
            }
            if path.first == "Remapped Rows" {
                if key == "Pending", value == "Yes" { findings.append("row remapping pending (needs a GPU reset)") }
                if key == "Remapping Failure Occurred", value == "Yes" { findings.append("row remapping failed") }
            }
            // Newer drivers (seen in "ECC Errors" on an H100 with driver 580): memory or cores the
            // GPU repairs at its next reset, memory it cannot repair, and SRAM errors past NVIDIA's RMA threshold.
            if value == "Yes", path.first == "ECC Errors" || path.first == "Remapped Rows", let finding = Self.repairFindings[key] {
                findings.append(finding)
            }
            // What the driver says must be done before the GPU is used again (NVML's recovery action: a reset, a
            // reboot, draining peer-to-peer traffic); "None" when nothing is.
            if key == "GPU Recovery Action", path.isEmpty, value != "None", value != "N/A" {
                findings.append("the driver asks for a recovery action: \(value)")
            }
        }
        finish()
        return report
    }

    /// Yes/No fields of newer drivers that mean the GPU should get no new work, and what each finding says.
    static let repairFindings = [
        "Channel Repair Pending": "memory channel repair pending (needs a GPU reset)",
        "TPC Repair Pending": "TPC repair pending (needs a GPU reset)",
        "Unrepairable Memory": "unrepairable memory",
        "SRAM Threshold Exceeded": "SRAM uncorrectable errors past NVIDIA's RMA threshold",
    ]

    /// XIDs that mean the GPU should get no more work until someone looks at it (NVIDIA's XID catalogue: double-bit
    /// ECC, GPU exceptions, row remapping events, NVLink, fallen off the bus, contained/uncontained ECC, GSP errors,
    /// and the uncorrectable DRAM/SRAM ECC XIDs that newer drivers log beside 48).
    public static let seriousXIDs: Set<Int> = [48, 61, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120, 140, 171, 172]

    /// `[86100.0] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, name=python, GPU has fallen off the bus.` -> ("3b:00", 79,
    /// text). Strict: the driver's message must start the line (after the kernel's time stamp) with a PCI address in
    /// hex, so a line another process gets the kernel to print (a segfault report naming a process called
    /// "NVRM: Xid (", which the kernel follows with "[PID]") is not an XID.
    public static func parseXID(_ line: Substring) -> (bus: String, xid: Int, text: String)? {
        var rest = line.drop { $0 == " " }
        if rest.first == "[" {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            rest = rest[rest.index(after: close)...].drop { $0 == " " }
        }
        guard rest.hasPrefix("NVRM: Xid (PCI:") else { return nil }
        rest = rest.dropFirst("NVRM: Xid (PCI:".count)
        let address = rest.prefix { $0.isHexDigit || $0 == ":" || $0 == "." }
        let parts = address.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, (4...8).contains(parts[0].count), parts[1].count == 2, (2...4).contains(parts[2].count) else { return nil }
        rest = rest.dropFirst(address.count)
        guard rest.hasPrefix("): ") else { return nil }
        rest = rest.dropFirst(3)
        let digits = rest.prefix { $0.isNumber }
        guard let number = Int(digits), rest.dropFirst(digits.count).first == "," else { return nil }
        let text = rest.dropFirst(digits.count).split(separator: ",").filter { !$0.contains("=") }.map { $0.trimmingSpaces }.joined(separator: ",")
        return (shortBus(address), number, text.isEmpty ? "XID \(number)" : "XID \(number): \(text)")
    }
}
