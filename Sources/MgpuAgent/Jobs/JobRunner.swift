import CMgpuSpawn
import Dispatch
import Foundation
import Logging
import MgpuCore
import MgpuSupervisor
import MgpuWire

/// Runs this node's job parts, each under its own supervisor process, and tracks them through
/// their directories under `<state>/jobs/`, so that they survive the agent.
public actor JobRunner {
    let root: String
    let nodeId: String
    let logger: Logger
    let executable: String
    var jobs: [JobID: LocalJob] = [:]
    /// Jobs this agent run has already taken, so a work item sent twice starts once.
    var seen: Set<JobID> = []
    /// Supervisors that recorded their status but had not exited yet: reaped on a later poll.
    var unreaped: Set<Int32> = []
    /// Wakes the agent's local loop the moment a supervisor exits (pidfd), so a job's end is reported at once.
    let exited = WakeSignal()
    var watchers: [JobID: any DispatchSourceRead] = [:]

    /// What to put in CUDA_VISIBLE_DEVICES for each GPU index, where it is not the index itself.
    let deviceIds: [Int: String]

    public init(stateDir: String, nodeId: String, gpus: [GPU] = [], logger: Logger, executable: String? = nil) throws {
        self.root = stateDir + "/jobs"
        self.nodeId = nodeId
        self.deviceIds = Dictionary(gpus.compactMap { gpu in gpu.deviceId.map { (gpu.index, $0) } }, uniquingKeysWith: { a, _ in a })
        self.logger = logger
        self.executable = executable ?? currentExecutable()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// Re-adopts the parts left by an earlier run of the agent: running ones are watched again,
    /// ended ones are reported with their real exit status.
    public func adopt() -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var count = 0
        for name in entries.sorted() {
            let dir = "\(root)/\(name)"
            guard let id = JobID(name),
                  let data = FileManager.default.contents(atPath: dir + "/work.json"),
                  let work = try? JSONDecoder().decode(WorkItem.self, from: data) else { continue }
            var job = LocalJob(work: work, dir: dir, supervisorPid: 0)
            if let pidText = readSmallFile(dir + "/pid"), let pid = Int32(pidText.split(separator: " ").first ?? "") {
                job.supervisorPid = pid
            }
            job.exit = readExit(job)
            if job.exit == nil && !processAlive(job.supervisorPid, commandLineContains: dir) {
                job.exit = ExitStatus(error: "the job's supervisor ended without recording an exit status")
            }
            jobs[id] = job
            seen.insert(id)
            count += 1
            if job.exit == nil { watch(id, job.supervisorPid) }
            logger.info("re-adopted job", metadata: ["job": "\(id)", "node": "\(nodeId)",
                                                    "state": "\(job.exit.map { "ended: \($0.summary)" } ?? "running")"])
        }
        return count
    }

    /// The job's process group (its main process's pid), from the supervisor's `pid` file.
    func jobProcessGroup(_ job: LocalJob) -> Int32? {
        guard let text = readSmallFile(job.dir + "/pid") else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        return fields.count == 2 ? Int32(fields[1]) : nil
    }

    func readExit(_ job: LocalJob) -> ExitStatus? {
        readSmallFile(job.dir + "/exit").flatMap(LocalJob.parseExit)
    }

    /// Starts a part unless this agent already has it.
    public func start(_ work: WorkItem) {
        guard !seen.contains(work.jobId) else { return }
        seen.insert(work.jobId)
        let dir = "\(root)/\(work.jobId)"
        var job = LocalJob(work: work, dir: dir, supervisorPid: 0)
        do {
            // A root agent runs each job as its owner's Unix account (and refuses when the node has none); any
            // other agent runs jobs as itself.
            var account: UnixAccount?
            if geteuid() == 0 {
                guard let owner = UnixAccount.named(work.user) else {
                    throw JobStartError("no Unix account \(work.user) on node \(nodeId): a root agent runs each job as its owner")
                }
                if owner.uid != 0 { account = owner }
            }
            try makeDirectory(dir)
            try writeFile(dir + "/work.json", try JSONEncoder().encode(work))
            try writeFile(dir + "/command", work.command.utf8)
            try writeFile(dir + "/workdir", work.workdir.utf8)
            try writeFile(dir + "/stdout", [])
            try writeFile(dir + "/stderr", [])
            let env = environment(for: work).map { "\($0.key)=\($0.value)" }
            job.isChild = true
            var args = [executable, "_supervise", dir, String(work.killGraceSeconds)]
            if let limit = work.timeLimit { args += ["--time", String(limit)] }
            if work.stdin == true {
                try writeFile(dir + "/stdin", [])
                args.append("--stdin")
            }
            if let tty = work.tty { args += ["--tty", String(tty.rows), String(tty.columns)] }
            if let account {
                // The owner may read its job's output on the node; nobody else may (files are 0600, the folder 0700).
                try giveOwnership([dir, dir + "/stdout", dir + "/stderr"] + (work.stdin == true ? [dir + "/stdin"] : []), to: account)
                args += ["--user", account.name]
            }
            // The supervisor reports everything through the job's files (an error, too, goes to `exit`).
            job.supervisorPid = try Spawn.start(args, environment: env, stdout: .devNull, stderr: .devNull, newSession: true)
            // The master has none of this part's output yet: no need to ask it where to resume.
            job.shipped = [.stdout: 0, .stderr: 0]
            watch(work.jobId, job.supervisorPid)
            logger.info("job started", metadata: ["job": "\(work.jobId)", "node": "\(nodeId)", "rank": "\(work.rank)",
                                                 "gpus": "\(work.gpus.map(String.init).joined(separator: ","))"])
        } catch let error as JobStartError {
            job.exit = ExitStatus(error: error.message)
            logger.error("job refused", metadata: ["job": "\(work.jobId)", "node": "\(nodeId)", "error": "\(error.message)"])
        } catch {
            job.exit = ExitStatus(error: "could not start the job on \(nodeId): \(error)")
            logger.error("job could not start", metadata: ["job": "\(work.jobId)", "node": "\(nodeId)", "error": "\(error)"])
        }
        jobs[work.jobId] = job
    }

    /// The job's environment: the submitter's, plus its GPUs and ids.
    func environment(for work: WorkItem) -> [String: String] {
        var env = work.environment
        env["CUDA_VISIBLE_DEVICES"] = work.gpus.map { deviceIds[$0] ?? String($0) }.joined(separator: ",")
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["MGPU_JOB_ID"] = work.jobId.rawValue
        env["MGPU_JOB_NAME"] = work.name
        env["MGPU_NODE_ID"] = nodeId
        env["MGPU_NODE_RANK"] = String(work.rank)
        env["MGPU_NNODES"] = String(work.nodeCount)
        env["MGPU_GPUS"] = env["CUDA_VISIBLE_DEVICES"]
        if work.stdin == true && work.tty == nil { env["PYTHONUNBUFFERED"] = "1" }
        return env
    }

    /// Asks a part's supervisor to terminate it (SIGTERM to its group, SIGKILL after the grace period).
    public func cancel(_ item: CancelItem) {
        guard var job = jobs[item.jobId], job.exit == nil, !job.cancelSent else { return }
        job.cancelSent = true
        jobs[item.jobId] = job
        if supervisorAlive(job) { kill(job.supervisorPid, SIGTERM) }
        logger.info("job terminating", metadata: ["job": "\(item.jobId)", "node": "\(nodeId)", "reason": "\(item.reason)"])
    }

    /// Running parts that read the client's stdin, with how much of it they have.
    func stdinWanted() -> [(JobID, Int64)] {
        jobs.filter { $0.value.work.stdin == true && $0.value.exit == nil && !$0.value.stdinDone }.map { id, job in
            (id, job.stdinOffset == 0 ? fileSize(job.dir + "/stdin") : job.stdinOffset)
        }
    }

    /// Appends the client's stdin for the supervisor to feed; `eof` marks its end.
    func appendStdin(_ id: JobID, offset: Int64, bytes: [UInt8], eof: Bool) {
        guard var job = jobs[id], job.exit == nil else { return }
        let path = job.dir + "/stdin"
        let current = fileSize(path)
        if offset == current && !bytes.isEmpty, let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(Data(bytes))
            try? handle.close()
        }
        job.stdinOffset = fileSize(path)
        if eof {
            FileManager.default.createFile(atPath: job.dir + "/stdin.eof", contents: nil)
            job.stdinDone = true
        }
        jobs[id] = job
    }

    func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }

    /// The master committed these parts' ends: forget them.
    public func forget(_ ids: [JobID]) {
        for id in ids {
            guard let job = jobs[id], job.readyToReport else { continue }
            jobs[id] = nil
            watchers.removeValue(forKey: id)?.cancel()
            try? FileManager.default.removeItem(atPath: job.dir)
        }
    }

    /// Watches a supervisor through a pidfd: when it exits, the local loop is woken at once.
    /// (Without pidfds the loop's tick still notices, a little later.)
    func watch(_ id: JobID, _ pid: Int32) {
        guard pid > 0 else { return }
        let fd = mgpu_pidfd_open(pid)
        guard fd >= 0 else { return }
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: .global())
        let signal = exited
        source.setEventHandler {
            source.cancel()
            Task { await signal.signal() }
        }
        source.setCancelHandler { close(fd) }
        watchers[id]?.cancel()
        watchers[id] = source
        source.resume()
    }

    /// Whether a part's supervisor still runs. Our own children are alive until reaped (and reaped here
    /// once they exit); re-adopted ones are checked through /proc.
    func supervisorAlive(_ job: LocalJob) -> Bool {
        guard job.supervisorPid > 0 else { return false }
        if job.isChild { return !reapIfExited(job.supervisorPid) }
        return processAlive(job.supervisorPid, commandLineContains: job.dir)
    }

    /// Notices parts that ended. Returns true when one did.
    public func poll() -> Bool {
        unreaped = unreaped.filter { !reapIfExited($0) }
        var ended = false
        for (id, job) in jobs where job.exit == nil {
            let alive = supervisorAlive(job)
            // Read the status after the liveness check: a supervisor writes it just before it exits.
            if let exit = readExit(job) {
                jobs[id]!.exit = exit
                if job.isChild && alive && !reapIfExited(job.supervisorPid) { unreaped.insert(job.supervisorPid) }
            } else if !alive {
                jobs[id]!.exit = ExitStatus(error: "the job's supervisor died without recording an exit status")
                logger.warning("job supervisor died", metadata: ["job": "\(id)", "node": "\(nodeId)", "pid": "\(job.supervisorPid)"])
            } else {
                continue
            }
            ended = true
            logger.info("job process ended", metadata: ["job": "\(id)", "node": "\(nodeId)", "exit": "\(jobs[id]!.exit!.summary)"])
        }
        return ended
    }

    /// What the agent reports to the master.
    public func snapshot() -> (running: [PartRef], finished: [FinishedPart]) {
        var running: [PartRef] = []
        var finished: [FinishedPart] = []
        for (id, job) in jobs.sorted(by: { $0.key < $1.key }) {
            if let exit = job.exit, job.readyToReport {
                finished.append(FinishedPart(jobId: id, rank: job.work.rank, exit: exit))
            } else {
                running.append(PartRef(jobId: id, rank: job.work.rank, gpus: job.work.gpus))
            }
        }
        return (running, finished)
    }

    public var count: Int { jobs.count }

    /// Running parts with their GPUs and process groups, for telemetry.
    func holders() -> [TelemetryCollector.Holder] {
        jobs.filter { $0.value.exit == nil }.map { id, job in
            TelemetryCollector.Holder(job: id, gpus: job.work.gpus, session: jobProcessGroup(job))
        }
    }

    /// A running part has a client attached (an interactive job).
    var hasInteractive: Bool { jobs.values.contains { $0.work.stdin == true && $0.exit == nil } }

    /// Terminates every running part (SIGTERM to each group, SIGKILL after its grace, capped at `maxGrace`)
    /// and waits until all have ended or `timeout` passes. Returns the parts stopped.
    public func terminateAll(reason: String, maxGrace: Double, timeout: Double) async -> [JobID] {
        let victims = jobs.filter { $0.value.exit == nil }.map(\.key)
        for id in victims {
            guard let job = jobs[id], supervisorAlive(job) else { continue }
            kill(job.supervisorPid, SIGTERM)
            logger.info("job terminating", metadata: ["job": "\(id)", "node": "\(nodeId)", "reason": "\(reason)"])
        }
        let start = Date()
        var killed = false
        while Date().timeIntervalSince(start) < timeout, jobs.values.contains(where: { $0.exit == nil }) {
            _ = poll()
            if !killed && Date().timeIntervalSince(start) >= maxGrace {
                // Do not wait out a long per-job grace period: the allocation is ending.
                for (_, job) in jobs where job.exit == nil { if let pgid = jobProcessGroup(job) { kill(-pgid, SIGKILL) } }
                killed = true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        for id in victims {
            let status = jobs[id]?.exit
            jobs[id]?.exit = ExitStatus(code: status?.code, signal: status?.signal ?? SIGTERM,
                                        error: "stopped on \(nodeId): \(reason)", nodeFailed: true)
        }
        return victims
    }

    /// Output not yet acknowledged by the master: (job, stream, offset, bytes), at most `limit` bytes each.
    func pendingOutput(limit: Int) -> [(JobID, Int, StreamName, Int64, [UInt8])] {
        var chunks: [(JobID, Int, StreamName, Int64, [UInt8])] = []
        for (id, job) in jobs {
            for stream in StreamName.allCases {
                guard let shipped = job.shipped[stream] else {
                    chunks.append((id, job.work.rank, stream, 0, []))  // ask the master what it has
                    continue
                }
                let size = job.fileSize(stream)
                guard size > shipped, let handle = FileHandle(forReadingAtPath: "\(job.dir)/\(stream.rawValue)") else { continue }
                defer { try? handle.close() }
                try? handle.seek(toOffset: UInt64(shipped))
                let data = (try? handle.read(upToCount: limit)) ?? Data()
                if !data.isEmpty { chunks.append((id, job.work.rank, stream, shipped, Array(data))) }
            }
        }
        return chunks
    }

    func acknowledge(_ id: JobID, _ stream: StreamName, size: Int64) {
        jobs[id]?.shipped[stream] = size
    }

    /// The master does not know this job (any more): nothing of it needs shipping.
    func dropOutput(_ id: JobID) {
        guard let job = jobs[id] else { return }
        for stream in StreamName.allCases { jobs[id]!.shipped[stream] = job.fileSize(stream) }
    }
}

/// Why this node will not run a job, in words for its owner.
struct JobStartError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
