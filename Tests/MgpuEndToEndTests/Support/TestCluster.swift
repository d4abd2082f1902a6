import CMgpuSpawn
import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

/// The `mgpu` binary under test: $MGPU_BINARY, else the one built beside the test bundle.
let unixUser: String = {
    if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
    return ProcessInfo.processInfo.environment["USER"] ?? "root"
}()

let mgpuBinary: String = {
    if let path = ProcessInfo.processInfo.environment["MGPU_BINARY"] { return path }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // On Linux the test bundle is .build/<triple>/debug/mgpuPackageTests.xctest.
    if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
    return dir.appendingPathComponent("mgpu").path
}()

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ text: String) { description = text }
}

/// A master and agents as separate real processes, in a temporary directory, on ephemeral loopback ports.
final class TestCluster {
    let dir: String
    var port = 0
    var masterPid: pid_t = 0
    var agentPids: [String: pid_t] = [:]
    var extraPids: [pid_t] = []
    var masterArgs: [String] = []
    /// Set for a master serving HTTPS: the CA certificate clients and agents trust.
    var caCert: String?
    var client: MasterClient {
        MasterClient(host: "127.0.0.1", port: port, token: token, tls: caCert.flatMap { try? ClientTLS(caCertificate: $0) })
    }

    /// The admin token the master left for this Unix user (zero setup), and the agents' cluster secret.
    var token: String? { read("state/tokens/\(unixUser)")?.trimmingCharacters(in: .whitespacesAndNewlines) }
    var secretFile: String { dir + "/state/cluster.secret" }

    init(name: String = #function) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        dir = NSTemporaryDirectory() + "mgpu-e2e-\(safe)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir + "/work", withIntermediateDirectories: true)
    }

    /// Starts (or restarts, on the same port) the master and waits until it listens.
    func startMaster(_ extra: [String] = [], logName: String = "master", env: [String: String] = [:]) async throws {
        if !extra.isEmpty || masterArgs.isEmpty { masterArgs = extra }
        let log = "\(dir)/\(logName).\(Int(Date().timeIntervalSince1970 * 1000)).out"
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        masterPid = try Spawn.start([mgpuBinary, "master", "--port", "\(port)", "--state-dir", dir + "/state"] + masterArgs,
                                    environment: environment.map { "\($0.key)=\($0.value)" },
                                    stdout: .path(log, flags: O_WRONLY | O_CREAT | O_TRUNC),
                                    stderr: .path(log + ".err", flags: O_WRONLY | O_CREAT | O_TRUNC))
        try await waitUntil("the master listens", timeout: 20) {
            guard let text = try? String(contentsOfFile: log, encoding: .utf8),
                  let listening = text.range(of: "listening on "),
                  let range = text[listening.upperBound...].range(of: "://") else { return false }
            let digits = text[range.upperBound...].drop { $0 != ":" }.dropFirst().prefix { $0.isNumber }
            self.port = Int(digits) ?? 0
            return self.port > 0
        }
    }

    func startAgent(_ id: String, gpus: Int? = 2, extra: [String] = [], env: [String: String] = [:], masterPort: Int? = nil,
                    masterHost: String = "127.0.0.1", prefix: [String] = [], withSecret: Bool = true, binary: String = mgpuBinary) throws {
        let log = "\(dir)/agent-\(id).\(Int(Date().timeIntervalSince1970 * 1000)).log"
        var args = prefix + [binary, "node", "--node-id", id, "--master-host", masterHost, "--master-port", "\(masterPort ?? port)",
                    "--state-dir", "\(dir)/\(id)", "--cpu-slots", "2", "--report-interval", "1"] + (withSecret ? ["--token-file", secretFile] : []) + (caCert.map { ["--ca-cert", $0] } ?? [])
        if let gpus { args += ["--simulate-gpus", "\(gpus)"] }
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        agentPids[id] = try Spawn.start(args + extra, environment: environment.map { "\($0.key)=\($0.value)" },
                                        stdout: .path(log, flags: O_WRONLY | O_CREAT | O_TRUNC),
                                        stderr: .path(log, flags: O_WRONLY | O_CREAT | O_APPEND))
    }

    /// This process's environment pointed at this cluster's master, with its admin token.
    var cliEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["MGPU_MASTER_HOST"] = "127.0.0.1"
        environment["MGPU_MASTER_PORT"] = "\(port)"
        if let token { environment["MGPU_TOKEN"] = token }
        if let caCert { environment["MGPU_CA_CERT"] = caCert }
        return environment
    }

    /// Starts a CLI command in the background (e.g. `srun`), its output in files; returns its pid and output path
    /// (relative to the cluster's directory, for `read`).
    func startCLI(_ args: [String]) throws -> (pid: pid_t, out: String) {
        let out = "\(dir)/bg-\(UUID().uuidString.prefix(8))"
        let environment = cliEnvironment
        let pid = try Spawn.start(["/bin/sh", "-c", "cd \"$1\" && shift && exec \"$@\"", "sh", dir + "/work", mgpuBinary] + args,
                                  environment: environment.map { "\($0.key)=\($0.value)" },
                                  stdout: .path(out, flags: O_WRONLY | O_CREAT | O_TRUNC),
                                  stderr: .path(out + ".err", flags: O_WRONLY | O_CREAT | O_TRUNC), newSession: false)
        extraPids.append(pid)
        return (pid, String(out.dropFirst(dir.count + 1)))
    }

    /// A master plus agents, all registered.
    static func start(agents: [String: Int] = ["node001": 2, "node002": 2], master extra: [String] = [],
                      name: String = #function) async throws -> TestCluster {
        let cluster = try TestCluster(name: name)
        try await cluster.startMaster(extra)
        for (id, gpus) in agents.sorted(by: { $0.key < $1.key }) { try cluster.startAgent(id, gpus: gpus) }
        try await cluster.waitForNodes(Set(agents.keys))
        return cluster
    }

    func waitForNodes(_ ids: Set<String>, up: Bool = true) async throws {
        try await waitUntil("nodes \(ids.sorted()) \(up ? "UP" : "DOWN")", timeout: 20) {
            let nodes = try await self.client.queue().nodes
            return ids.allSatisfy { id in nodes.contains { $0.id == id && ($0.state == .up) == up } }
        }
    }

    /// Runs the CLI against this cluster's master, in `cwd` (default: the work dir).
    /// With `viaShell`, that shell command line runs instead (in the work dir, with the same environment).
    /// With `as`, the CLI runs as that Unix account (through setpriv, after entering `cwd`), as a real user would, with
    /// `accountEnv` set only once it runs as that account (nothing of it reaches the root processes before the switch).
    func mgpu(_ args: [String], cwd: String? = nil, env: [String: String] = [:], stdin: String? = nil,
              viaShell: String? = nil, as account: String? = nil, accountEnv: [String: String] = [:],
              timeout: Double = 60) async throws -> CommandResult {
        let out = "\(dir)/cli-\(UUID().uuidString.prefix(8))"
        if let stdin { try stdin.write(toFile: out + ".in", atomically: true, encoding: .utf8) }
        var environment = cliEnvironment
        for (k, v) in env { environment[k] = v }
        let script = viaShell.map { "cd \"$1\" && \($0)" } ?? "cd \"$1\" && shift && exec \"$@\""
        let runAs = account.map { name in
            ["/usr/bin/setpriv", "--reuid=\(name)", "--regid=\(getpwnam(name)?.pointee.pw_gid ?? 65534)", "--init-groups",
             "/usr/bin/env"] + accountEnv.map { "\($0.key)=\($0.value)" }
        } ?? []
        let pid = try Spawn.start(["/bin/sh", "-c", script, "sh", cwd ?? dir + "/work"] + runAs + [mgpuBinary] + args,
                                  environment: environment.map { "\($0.key)=\($0.value)" },
                                  stdin: stdin == nil ? .devNull : .path(out + ".in", flags: O_RDONLY),
                                  stdout: .path(out, flags: O_WRONLY | O_CREAT | O_TRUNC),
                                  stderr: .path(out + ".err", flags: O_WRONLY | O_CREAT | O_TRUNC), newSession: false)
        let status = try await waitForExit(pid, timeout: timeout)
        return CommandResult(status: status, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                             stderr: (try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? "")
    }

    /// Submits and returns the job id.
    func submit(_ args: [String], cwd: String? = nil, env: [String: String] = [:]) async throws -> JobID {
        let result = try await mgpu(["submit"] + args, cwd: cwd, env: env)
        // "Submitted job ID", or "Submitted array job ID (N tasks: ...)".
        guard result.status == 0, let line = result.stdout.split(separator: "\n").first, line.hasPrefix("Submitted "),
              let word = line.split(separator: " ").first(where: { JobID(String($0)) != nil }), let id = JobID(String(word)) else {
            throw TestFailure("submit \(args) failed (\(result.status)): \(result.stdout) \(result.stderr)")
        }
        return id
    }

    func job(_ id: JobID) async throws -> JobInfo { try await client.job(id.rawValue) }

    @discardableResult
    func waitForState(_ id: JobID, _ states: Set<JobState>, timeout: Double = 30) async throws -> JobInfo {
        var last: JobInfo?
        try await waitUntil("job \(id) to be \(states.map(\.rawValue).sorted())", timeout: timeout, detail: { "last: \(last.map { "\($0.state) \($0.note ?? "")" } ?? "none")" }) {
            last = try await self.job(id)
            return states.contains(last!.state)
        }
        return last!
    }

    func kill(agent id: String, signal: Int32 = SIGKILL) async throws {
        guard let pid = agentPids[id] else { return }
        Glibc.kill(pid, signal)
        if signal == SIGKILL { _ = try await waitForExit(pid, timeout: 10) }
    }

    func killMaster() async throws {
        Glibc.kill(masterPid, SIGKILL)
        _ = try await waitForExit(masterPid, timeout: 10)
    }

    /// Kills everything this cluster started, the jobs' process groups included.
    func stop() {
        // Only processes it started: a pid of 0 (no master started) would be this whole process group.
        let started = ([masterPid] + Array(agentPids.values) + extraPids).filter { $0 > 0 }
        for pid in started { Glibc.kill(pid, SIGKILL) }
        for pid in started { var s: Int32 = 0; waitpid(pid, &s, 0) }
        let enumerator = FileManager.default.enumerator(atPath: dir)
        while let path = enumerator?.nextObject() as? String {
            // A job's folder (<agent-state>/jobs/<JOB>): its supervisor's pid record.
            let parts = path.split(separator: "/")
            guard parts.count >= 2, parts[parts.count - 2] == "jobs", JobID(String(parts[parts.count - 1])) != nil,
                  let text = Self.jobRecord("\(dir)/\(path)", "pid") else { continue }
            let pids = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int32($0) }
            if pids.count == 2 { Glibc.kill(-pids[1], SIGKILL); Glibc.kill(pids[0], SIGKILL) }
        }
        // A supervisor that had not written its pid file yet: found by the folder on its command line.
        for pid in processes(containing: "_supervise \(dir)/") { Glibc.kill(pid, SIGKILL) }
        // Its files go too (each run of the suite left about 90 folders, one of 382 MB: over many runs they filled a
        // disk); MGPU_KEEP_TEST_DIRS=1 keeps them to look at.
        if ProcessInfo.processInfo.environment["MGPU_KEEP_TEST_DIRS"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    /// A job folder's record as its supervisor keeps it (`pid`, `exit`): the folder's `user.mgpu.NAME` attribute,
    /// else the file.
    static func jobRecord(_ folder: String, _ name: String) -> String? {
        var bytes = [UInt8](repeating: 0, count: 65536)
        let n = getxattr(folder, "user.mgpu." + name, &bytes, bytes.count)
        if n >= 0 { return String(decoding: bytes[0..<n], as: UTF8.self) }
        return try? String(contentsOfFile: folder + "/" + name, encoding: .utf8)
    }

    /// Everything the agent `id` logged, across its restarts.
    func agentLog(_ id: String) -> String? {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("agent-\(id).") }.sorted()
        return names.isEmpty ? nil : names.compactMap { read($0) }.joined()
    }

    func read(_ relative: String) -> String? {
        try? String(contentsOfFile: "\(dir)/\(relative)", encoding: .utf8)
    }
}

func waitForExit(_ pid: pid_t, timeout: Double) async throws -> Int32 {
    let deadline = Date().addingTimeInterval(timeout)
    var status: Int32 = 0
    while true {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { return Spawn.decode(status).shellCode }
        if r < 0 { return -1 }
        if Date() > deadline { throw TestFailure("process \(pid) still running after \(timeout) s") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

func waitUntil(_ what: String, timeout: Double, detail: () -> String = { "" }, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    var lastError: (any Error)?
    while Date() < deadline {
        do {
            if try await condition() { return }
        } catch {
            lastError = error
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw TestFailure("timed out after \(timeout) s waiting for \(what) \(detail()) \(lastError.map { "(\($0))" } ?? "")")
}

/// Processes whose command line contains `marker`.
func processes(containing marker: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let cmd = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        guard cmd.contains(marker) else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !stat.contains(") Z ")
    }
}
