import Dispatch
import Foundation
import MgpuCore
import MgpuSupervisor

/// Samples this node for the heartbeat: CPU (from /proc/stat deltas), load, memory, and every GPU — from
/// nvidia-smi, or made up for simulated GPUs (clearly marked simulated): a simulated GPU a job holds is as busy as the
/// job's processes keep one CPU (a job that sleeps leaves its GPUs idle; a busy loop keeps them at 100 %).
actor TelemetryCollector {
    let gpus: [GPU]
    let nvidiaSMI: String?
    let avoidForeign: Bool
    var lastCPU: SystemStats.CPUTimes?
    /// Simulated GPUs: each job session's CPU ticks at the last sample, and when.
    var lastSessionTicks: [Int32: Int] = [:]
    var lastSessionTime: Double?
    /// Health checks (`mgpu node --health-check`, --health-interval) and what the last one found.
    let healthProgram: String?
    let healthInterval: Double
    var lastHealthCheck = -Double.infinity
    /// Our GPU index -> why it is unhealthy.
    var gpuHealth: [Int: String] = [:]
    var programFailure: String?
    /// PCI bus ids seen for each GPU (UUID), so that a GPU nvidia-smi can no longer reach is still named.
    var knownBus: [String: String] = [:]
    /// XID lines in the kernel log at the first check (older than this agent: not held against a GPU), and the
    /// serious ones seen since, by bus (they stay until the agent restarts, after someone has reset the GPU).
    var xidBaseline: Set<String>?
    var xidFindings: [String: String] = [:]

    /// What the runner knows of the parts it runs: their GPUs and their process group (= session) ids.
    struct Holder: Sendable {
        var job: JobID
        var gpus: [Int]
        var session: Int32?
    }

    /// The kernel log's reader (root may read it; elsewhere it may fail, and XIDs are not seen).
    let kernelLog: [String]

    init(gpus: [GPU], nvidiaSMI: String?, avoidForeign: Bool, healthProgram: String? = nil, healthInterval: Double = 60,
         kernelLog: [String] = ["dmesg"]) {
        self.kernelLog = kernelLog
        self.gpus = gpus
        self.nvidiaSMI = nvidiaSMI
        self.avoidForeign = avoidForeign
        self.healthProgram = healthProgram
        self.healthInterval = healthInterval
    }

    func sample(holders: [Holder], now: Double) async -> NodeTelemetry {
        var t = NodeTelemetry(time: now, avoidForeign: avoidForeign)
        if lastCPU == nil {
            // CPU utilisation is a difference: take the first baseline a moment before the first reading.
            lastCPU = readSmallFile("/proc/stat").flatMap(SystemStats.parseCPU)
            try? await Task.sleep(for: .milliseconds(200))
        }
        if let cpu = readSmallFile("/proc/stat").flatMap(SystemStats.parseCPU) {
            if let last = lastCPU { t.cpuPercent = SystemStats.percent(from: last, to: cpu) }
            lastCPU = cpu
        }
        t.load = readSmallFile("/proc/loadavg").flatMap(SystemStats.parseLoad)
        if let mem = readSmallFile("/proc/meminfo").flatMap(SystemStats.parseMemory) {
            t.memoryUsedMB = mem.used
            t.memoryTotalMB = mem.total
        }
        if gpus.contains(where: \.simulated) {
            t.gpus = Self.simulated(gpus, holders: holders, now: now, activity: sessionActivity(holders, now: now))
        } else if !gpus.isEmpty, let program = nvidiaSMI ?? Spawn.findInPath("nvidia-smi") {
            t.gpus = await Self.fromNvidiaSMI(program, gpus: gpus, holders: holders)
        }
        if now - lastHealthCheck >= healthInterval {
            lastHealthCheck = now
            await checkHealth()
        }
        for i in t.gpus.indices { t.gpus[i].unhealthy = gpuHealth[t.gpus[i].index] }
        t.healthCheck = programFailure
        return t
    }

    /// Reads the driver's health readings and the kernel's XID lines for real GPUs, and runs the site's health program.
    func checkHealth() async {
        if !gpus.isEmpty, !gpus.contains(where: \.simulated), let program = nvidiaSMI ?? Spawn.findInPath("nvidia-smi") {
            let report = NvidiaSMI.parseHealth(await Self.runOffPool([program] + NvidiaSMI.healthArguments, anyStatus: true) ?? "")
            knownBus.merge(report.busIDs) { _, new in new }
            var found: [Int: String] = [:]
            for gpu in gpus {
                var why: [String] = []
                if let finding = report.unhealthy[gpu.uuid] { why.append(finding) }
                // A GPU nvidia-smi cannot reach: named by its bus, or (bus not known yet) missing from the report.
                if let bus = knownBus[gpu.uuid], let error = report.deviceErrors.first(where: { $0.bus == bus }) { why.append(error.message) }
                else if report.busIDs[gpu.uuid] == nil, let error = report.deviceErrors.first { why.append(error.message) }
                if let bus = knownBus[gpu.uuid], let xid = xidFindings[bus] { why.append(xid) }
                if !why.isEmpty { found[gpu.index] = why.joined(separator: "; ") }
            }
            if let log = await Self.runOffPool(kernelLog) {
                let lines = log.split(whereSeparator: \.isNewline).filter { $0.contains("NVRM: Xid") }.map(String.init)
                if let baseline = xidBaseline {
                    for line in lines where !baseline.contains(line) {
                        guard let xid = NvidiaSMI.parseXID(Substring(line)), NvidiaSMI.seriousXIDs.contains(xid.xid),
                              xidFindings[xid.bus] == nil else { continue }
                        xidFindings[xid.bus] = xid.text
                        if let gpu = gpus.first(where: { knownBus[$0.uuid] == xid.bus }) {
                            found[gpu.index] = [found[gpu.index], xid.text].compactMap { $0 }.joined(separator: "; ")
                        }
                    }
                } else {
                    xidBaseline = Set(lines.suffix(10_000))
                }
            }
            gpuHealth = found
        }
        if let healthProgram {
            // The site's own check, like Slurm's HealthCheckProgram: a non-zero exit drains the node, its first line saying why.
            switch await Self.captureOffPool(["/bin/sh", "-c", "exec \"$0\" 2>&1", healthProgram], timeout: 60) {
            case nil: programFailure = "\(healthProgram) could not be started"
            case let (status, _)? where status == 0: programFailure = nil
            case let (status, output)?:
                let first = output.split(whereSeparator: \.isNewline).map { $0.trimmingSpaces }.first { !$0.isEmpty }
                programFailure = first ?? (status == 137 ? "\(healthProgram) timed out after 60 s" : "\(healthProgram) exited with status \(status)")
            }
        }
    }

    /// A program's output, off the cooperative pool; nil when it fails (unless `anyStatus`: nvidia-smi still reports the
    /// GPUs it can reach when it cannot reach one).
    static func runOffPool(_ argv: [String], anyStatus: Bool = false) async -> String? {
        let result = await captureOffPool(argv, timeout: 10)
        return result?.status == 0 || anyStatus ? result?.output : nil
    }

    /// A program's exit status and output, run on a Dispatch thread (it blocks): nil when it could not be started.
    static func captureOffPool(_ argv: [String], timeout: Double) async -> (status: Int32, output: String)? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: try? Spawn.capture(argv, timeout: timeout)) }
        }
    }

    static func fromNvidiaSMI(_ program: String, gpus: [GPU], holders: [Holder]) async -> [GPUTelemetry] {
        guard let out = await runOffPool([program] + NvidiaSMI.telemetryArguments) else { return [] }
        let readings = Dictionary(NvidiaSMI.parseTelemetry(out).map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        let apps = (await runOffPool([program] + NvidiaSMI.computeAppsArguments)).map(NvidiaSMI.parseComputeApps) ?? []
        let sessions = Dictionary(holders.compactMap { h in h.session.map { ($0, h.job) } }, uniquingKeysWith: { a, _ in a })
        return gpus.map { gpu in
            var reading = readings[gpu.physicalIndex ?? gpu.index] ?? GPUTelemetry(index: gpu.index)
            reading.index = gpu.index
            reading.processes = apps.filter { $0.uuid == gpu.uuid }.map { app in
                GPUProcess(pid: app.pid, user: processUser(Int32(app.pid)), memoryMB: app.memoryMB,
                           jobId: processSession(Int32(app.pid)).flatMap { sessions[$0] })
            }
            reading.inUseOutside = reading.processes.contains { $0.jobId == nil && $0.memoryMB > 0 }
            return reading
        }
    }

    /// How much of one CPU each holder's processes (its session) used since the last sample, 0-1; nothing for a
    /// session first seen now.
    func sessionActivity(_ holders: [Holder], now: Double) -> [JobID: Double] {
        let sessions = Set(holders.compactMap(\.session))
        guard !sessions.isEmpty else {
            lastSessionTicks = [:]
            return [:]
        }
        let ticks = Self.sessionTicks(sessions)
        defer {
            lastSessionTicks = ticks
            lastSessionTime = now
        }
        guard let before = lastSessionTime, now > before else { return [:] }
        let hz = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
        var result: [JobID: Double] = [:]
        for holder in holders {
            guard let session = holder.session, let was = lastSessionTicks[session], let is_ = ticks[session] else { continue }
            result[holder.job] = min(1, max(0, Double(is_ - was) / hz / (now - before)))
        }
        return result
    }

    /// CPU ticks (user + system) of every process in each of `sessions`, from /proc/PID/stat.
    static func sessionTicks(_ sessions: Set<Int32>) -> [Int32: Int] {
        var ticks: [Int32: Int] = [:]
        for session in sessions { ticks[session] = 0 }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return ticks }
        for entry in entries where entry.first?.isNumber == true {
            // Fields after the command (which may hold spaces and parentheses): state is 3, session 6, utime 14, stime 15.
            guard let stat = readSmallFile("/proc/\(entry)/stat"), let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let session = Int32(fields[3]), sessions.contains(session),
                  let user = Int(fields[11]), let system = Int(fields[12]) else { continue }
            ticks[session, default: 0] += user + system
        }
        return ticks
    }

    /// Believable, changing numbers: near idle when no mgpu job holds the GPU; when one does, as busy as its processes
    /// keep a CPU (`activity`, 0-1; busy when not measured yet).
    static func simulated(_ gpus: [GPU], holders: [Holder], now: Double, activity: [JobID: Double] = [:]) -> [GPUTelemetry] {
        gpus.map { gpu in
            let holder = holders.first { $0.gpus.contains(gpu.index) }
            let wave = sin(now / 7 + Double(gpu.index))
            let jitter = Double(abs((Int(now * 10) &* 2_654_435_761 &+ gpu.index * 97) % 100)) / 100
            if let holder {
                let busy = activity[holder.job] ?? 1
                return GPUTelemetry(index: gpu.index, utilization: min(100, busy * (88 + 8 * wave + 4 * jitter)),
                                    memoryUsedMB: Int(Double(gpu.memoryMB) * (0.72 + 0.05 * wave)), memoryTotalMB: gpu.memoryMB,
                                    temperatureC: 40 + busy * (28 + 5 * wave), powerW: 55 + busy * (190 + 35 * wave),
                                    processes: [GPUProcess(pid: Int(holder.session ?? 0), user: processUser(holder.session ?? 0),
                                                           memoryMB: Int(Double(gpu.memoryMB) * 0.7), jobId: holder.job)])
            }
            return GPUTelemetry(index: gpu.index, utilization: 2 * jitter, memoryUsedMB: 3, memoryTotalMB: gpu.memoryMB,
                                temperatureC: 33 + 2 * wave, powerW: 55 + 5 * jitter)
        }
    }
}

/// The session id of a process (field 6 of /proc/PID/stat); an mgpu job's processes share its session.
func processSession(_ pid: Int32) -> Int32? {
    guard let stat = readSmallFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return fields.count > 3 ? Int32(fields[3]) : nil
}

/// The user name owning a process.
func processUser(_ pid: Int32) -> String {
    guard pid > 0, let status = readSmallFile("/proc/\(pid)/status"),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }),
          let uid = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap({ UInt32($0) }) else { return "?" }
    if let pw = getpwuid(uid), let name = pw.pointee.pw_name { return String(cString: name) }
    return String(uid)
}
