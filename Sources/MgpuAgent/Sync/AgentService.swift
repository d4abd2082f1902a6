import Foundation
import Logging
import MgpuClient
import MgpuCore
import MgpuWire
import ServiceLifecycle

/// The node agent: registers, then only dials out. Two loops share the work:
/// - the long-poll loop waits at the master for work (`/v1/agent/sync` with `wait`);
/// - the local loop notices ended jobs, ships their output, and reports at once when a job ends,
///   and as a heartbeat otherwise.
/// When the master cannot be reached, jobs keep running and their output stays on disk; the agent
/// retries with capped backoff, one log line per attempt, and re-registers when the master is back.
public actor AgentService: Service {
    let config: AgentConfig
    /// Speaks with the node credential once the node has enrolled, else with the cluster secret (to enrol).
    var client: MasterClient
    var usingCredential = false
    let runner: JobRunner
    let logger: Logger
    let incarnation = UUID().uuidString
    var registered = false
    var connected = false
    var pollSeconds = 10.0
    var heartbeatSeconds = 5.0
    var lastReport = 0.0
    var failures = 0
    let telemetry: TelemetryCollector
    var latestTelemetry: NodeTelemetry?

    public init(config: AgentConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        self.runner = try JobRunner(stateDir: config.stateDir, nodeId: config.nodeId, gpus: config.gpus, logger: logger)
        let credential = Self.readCredential(config.credentialPath)
        self.usingCredential = credential != nil
        self.client = MasterClient(host: config.masterHost, port: config.masterPort, token: credential ?? config.token, tls: config.tls)
        self.telemetry = TelemetryCollector(gpus: config.gpus, nvidiaSMI: config.nvidiaSMI, avoidForeign: config.avoidForeignGPUs,
                                            healthProgram: config.healthCheck, healthInterval: config.healthInterval)
    }

    public func run() async throws {
        let adopted = await runner.adopt()
        if adopted > 0 { logger.info("found \(adopted) job(s) from an earlier run", metadata: ["node": "\(config.nodeId)"]) }
        // On graceful shutdown the loops are cancelled, an in-flight long-poll included.
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.pollLoop() }
                group.addTask { await self.localLoop() }
                group.addTask { await self.stdinLoop() }
                group.addTask { await self.telemetryLoop() }
            }
        }
        if config.drainOnShutdown {
            await drain()
        } else {
            logger.info("agent stopped; its jobs keep running under their supervisors", metadata: ["node": "\(config.nodeId)"])
        }
    }

    /// At SIGTERM with --drain-on-sigterm (the default inside Slurm, whose scancel sends SIGTERM and SIGKILLs
    /// 30 s later): stop taking work, terminate every job, report them to the master as NODE_FAIL with the
    /// reason, and deregister. Each step is bounded so the whole fits in Slurm's kill wait.
    func drain() async {
        let reason = "the agent received SIGTERM" + (ProcessInfo.processInfo.environment["SLURM_JOB_ID"].map { " (Slurm job \($0) ending)" } ?? "")
        let stopped = await runner.terminateAll(reason: reason, maxGrace: 15, timeout: 18)
        logger.info("drained: stopped \(stopped.count) job(s); reporting to the master", metadata: ["node": "\(config.nodeId)"])
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline {
            do {
                try await sync(wait: 0)
                if await runner.count == 0 { break }
            } catch {
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        do {
            try await client.deregister(DeregisterRequest(nodeId: config.nodeId, incarnation: incarnation, reason: reason))
            logger.info("deregistered from \(address)", metadata: ["node": "\(config.nodeId)"])
        } catch {
            logger.warning("could not deregister from \(address): \(error)", metadata: ["node": "\(config.nodeId)"])
        }
    }

    var address: String { "\(config.masterHost):\(config.masterPort)" }

    static func readCredential(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    static func saveCredential(_ credential: String, _ path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(path: path, errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(), info.st_nlink == 1,
              ftruncate(fd, 0) == 0 else { throw POSIXError(path: path, EPERM, "not a private file of this user") }
        fchmod(fd, 0o600)
        let line = Array((credential + "\n").utf8)
        guard write(fd, line, line.count) == line.count else { throw POSIXError(path: path, errno) }
    }

    func ensureRegistered() async throws {
        guard !registered else { return }
        let answer = try await client.register(RegisterRequest(nodeId: config.nodeId, incarnation: incarnation, gpus: config.gpus,
                                                               cpuSlots: config.cpuSlots, advertiseAddress: config.advertiseAddress))
        if let credential = answer.credential {
            do {
                try Self.saveCredential(credential, config.credentialPath)
                logger.info("enrolled with \(address): node credential kept in \(config.credentialPath)", metadata: ["node": "\(config.nodeId)"])
            } catch {
                logger.error("enrolled, but cannot keep the node credential in \(config.credentialPath): \(error); after a restart an admin must run `mgpu admin node remove \(config.nodeId)`",
                             metadata: ["node": "\(config.nodeId)"])
            }
            client = MasterClient(host: config.masterHost, port: config.masterPort, token: credential, tls: config.tls)
            usingCredential = true
        }
        registered = true
        pollSeconds = answer.pollSeconds
        heartbeatSeconds = answer.heartbeatSeconds
        let gpuText = config.gpus.map { gpu in
            "\(gpu.index): \(gpu.name) \(gpu.memoryMB) MB\(gpu.simulated ? ", simulated" : "")\(gpu.physicalIndex.map { ", physical \($0)" } ?? "")"
        }
            .joined(separator: ", ")
        logger.info("\(config.nodeId) registered with \(address): \(config.gpus.count) GPU\(config.gpus.count == 1 ? "" : "s")\(gpuText.isEmpty ? "" : " (\(gpuText))")",
                    metadata: ["node": "\(config.nodeId)"])
    }

    /// One sync with the master; handles its answer. Throws when the master cannot be reached.
    func sync(wait: Double) async throws {
        try await ensureRegistered()
        await shipOutput()
        let (running, finished) = await runner.snapshot()
        var request = SyncRequest(nodeId: config.nodeId, incarnation: incarnation, running: running,
                                  finished: finished, wait: wait, freePort: freeTCPPort())
        request.telemetry = latestTelemetry
        let response = try await client.sync(request)
        markConnected()
        lastReport = Date().timeIntervalSince1970
        if response.reregister {
            registered = false
            return
        }
        await runner.forget(response.acknowledged)
        for item in response.cancel { await runner.cancel(item) }
        for item in response.start { await runner.start(item) }
        if !response.start.isEmpty { await shipOutput() }
    }

    func markConnected() {
        if !connected && failures > 0 {
            logger.info("master \(address) reachable again", metadata: ["node": "\(config.nodeId)"])
        }
        connected = true
        failures = 0
    }

    func markFailed(_ error: any Error) -> Double {
        registered = false  // register again once the master answers: it may have restarted
        if usingCredential, let refused = error as? APIError, refused.status == 401 {
            // The master no longer knows this node's credential (an admin removed the node): enrol anew.
            logger.warning("master \(address) does not know this node's credential (was the node removed?); enrolling again with the cluster secret",
                           metadata: ["node": "\(config.nodeId)"])
            unlink(config.credentialPath)
            client = MasterClient(host: config.masterHost, port: config.masterPort, token: config.token, tls: config.tls)
            usingCredential = false
        }
        connected = false
        failures += 1
        let delay = min(config.maxBackoff, 0.25 * pow(2, Double(min(failures - 1, 10))))
        let what = error is APIError ? "refused this agent" : "unreachable"
        logger.warning("master \(address) \(what) (attempt \(failures)): \(error); retrying in \(String(format: "%.1f", delay)) s; jobs keep running",
                       metadata: ["node": "\(config.nodeId)"])
        return delay
    }

    func pollLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await sync(wait: connected ? pollSeconds : 0)
            } catch is CancellationError {
                return
            } catch {
                let delay = markFailed(error)
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(delay * 1000))) }
            }
        }
    }

    func localLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // Someone watches an interactive job live: ship its output sooner. A job's end wakes the loop at once.
            let tick = await runner.hasInteractive ? 0.01 : 0.05
            await runner.exited.wait(0, seconds: tick)
            let ended = await runner.poll()
            guard connected else { continue }
            let due = Date().timeIntervalSince1970 - lastReport >= min(heartbeatSeconds, config.reportInterval)
            let output = await hasOutput()
            if ended || due || output {
                do { try await sync(wait: 0) } catch { connected = false }
            }
        }
    }

    /// Samples the node every report interval; the sample travels with the next sync.
    func telemetryLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let sample = await telemetry.sample(holders: await runner.holders(), now: Date().timeIntervalSince1970)
            let foreignBefore = latestTelemetry?.unavailableGPUs ?? []
            let checkBefore = latestTelemetry?.healthCheck
            let healthBefore = latestTelemetry?.gpus.map(\.unhealthy) ?? sample.gpus.map { _ in nil }
            latestTelemetry = sample
            if sample.unavailableGPUs != foreignBefore {
                logger.info("GPUs in use outside mgpu: \(sample.gpus.filter(\.inUseOutside).map(\.index))",
                            metadata: ["node": "\(config.nodeId)"])
                lastReport = 0  // report at once
            }
            if sample.gpus.map(\.unhealthy) != healthBefore || sample.healthCheck != checkBefore {
                for gpu in sample.gpus where gpu.unhealthy != nil {
                    logger.warning("GPU \(gpu.index) unhealthy: \(gpu.unhealthy!)", metadata: ["node": "\(config.nodeId)", "gpu": "\(gpu.index)"])
                }
                if let failing = sample.healthCheck { logger.warning("health check failed: \(failing)", metadata: ["node": "\(config.nodeId)"]) }
                else if checkBefore != nil { logger.info("health check passes again", metadata: ["node": "\(config.nodeId)"]) }
                lastReport = 0
            }
            try? await Task.sleep(for: .milliseconds(Int64(config.reportInterval * 1000)))
        }
    }

    /// Relays interactive jobs' stdin from the master to their directories (a long-poll per job).
    func stdinLoop() async {
        var relays: [JobID: Task<Void, Never>] = [:]
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let wanted = await runner.stdinWanted()
            let ids = Set(wanted.map(\.0))
            for (id, task) in relays where !ids.contains(id) { task.cancel(); relays[id] = nil }
            for (id, _) in wanted where relays[id] == nil {
                relays[id] = Task { await self.relayStdin(id) }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        for task in relays.values { task.cancel() }
    }

    func relayStdin(_ id: JobID) async {
        var failures = 0
        while !Task.isCancelled {
            guard let (_, offset) = await runner.stdinWanted().first(where: { $0.0 == id }) else { return }
            do {
                let input = try await client.stdin(job: id, offset: offset, wait: 20)
                await runner.appendStdin(id, offset: offset, bytes: input.bytes, eof: input.eof)
                failures = 0
                if input.eof { return }
            } catch let error as APIError where error.status == 404 {
                await runner.appendStdin(id, offset: offset, bytes: [], eof: true)
                return
            } catch {
                failures += 1
                try? await Task.sleep(for: .milliseconds(Int64(min(5000, 100 * failures * failures))))
            }
        }
    }

    func hasOutput() async -> Bool {
        !(await runner.pendingOutput(limit: 1)).isEmpty
    }

    /// Sends every job's new output, in order, from the offset the master holds.
    func shipOutput() async {
        for _ in 0..<64 {
            let chunks = await runner.pendingOutput(limit: 1 << 20)
            if chunks.isEmpty { return }
            for (id, rank, stream, offset, bytes) in chunks {
                do {
                    let size = try await client.sendOutput(job: id, rank: rank, stream: stream, offset: offset, bytes: bytes)
                    await runner.acknowledge(id, stream, size: size)
                } catch let error as APIError where error.status == 404 {
                    await runner.dropOutput(id)
                } catch {
                    return
                }
            }
        }
    }
}
