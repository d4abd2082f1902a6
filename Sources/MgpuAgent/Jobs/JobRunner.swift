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
    let folders: JobFolders
    let nodeId: String
    let logger: Logger
    let executable: String
    /// How a job's supervisor is started: `mgpu-supervise _supervise` or `mgpu _supervise`, then the job's arguments.
    let supervisor: [String]
    /// Whether it keeps its records as attributes of the job's folder (`--attr-records`).
    let attributeRecords: Bool
    var jobs: [JobID: LocalJob] = [:]
    /// Starts this agent has already taken (`WorkItem.startKey`), so a work item sent twice starts once, while a
    /// requeued job placed here again starts anew.
    var seen: Set<String> = []
    /// Supervisors that recorded their status but had not exited yet: reaped on a later poll.
    var unreaped: Set<Int32> = []
    /// Wakes the agent's local loop the moment a supervisor exits (pidfd), so a job's end is reported at once.
    nonisolated let exited = WaitList<Int>()
    var watchers: [JobID: any DispatchSourceRead] = [:]

    public init(stateDir: String, nodeId: String, gpus: [GPU] = [], logger: Logger, executable: String? = nil) throws {
        self.folders = try JobFolders(path: stateDir + "/jobs")
        self.nodeId = nodeId
        self.logger = logger
        self.executable = executable ?? currentExecutable()
        // The small supervisor program beside this executable when it is installed there (scripts/build, install and
        // package put it there): a job start then loads a few MB, not all of mgpu. Else this executable's hidden mode.
        let beside = (self.executable as NSString).deletingLastPathComponent + "/mgpu-supervise"
        // The pid and exit records as the folder's attributes, when the supervisor can (`--features`; mgpu's own
        // `_supervise` can): one of mgpu 0.2.0 left beside a newer mgpu refuses the flag, and would fail every job.
        if isExecutable(beside) {
            self.supervisor = [beside, "_supervise"]
            let features = try? Spawn.capture([beside, "--features"], timeout: 10)
            self.attributeRecords = features.map { $0.status == 0 && $0.output.split(separator: "\n").contains("attr-records") } ?? false
        } else {
            self.supervisor = [self.executable, "_supervise"]
            self.attributeRecords = true
        }
    }

    /// The supervisor's environment: fixed, nothing of the job's (the job's own goes through its `environ` file and
    /// is applied only in its final execve, after the switch to its owner).
    static let supervisorEnvironment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]

    /// Re-adopts the parts left by an earlier run of the agent: running ones are watched again,
    /// ended ones are reported with their real exit status.
    public func adopt() -> Int {
        var count = 0
        for name in folders.entries().sorted() {
            guard let id = JobID(name), let data = folders.read(id, "work.json", limit: 64 << 20),
                  let work = try? JSONDecoder().decode(WorkItem.self, from: Data(data)) else { continue }
            var job = LocalJob(work: work, dir: folders.dir(id), supervisorPid: 0)
            if let (supervisor, main) = pids(id) {
                job.supervisorPid = supervisor
                job.jobPid = main
            }
            job.exit = readExit(id)
            if job.exit == nil && !processAlive(job.supervisorPid, commandLineContains: job.dir) {
                job.exit = ExitStatus(error: "the job's supervisor ended without recording an exit status")
            }
            jobs[id] = job
            seen.insert(work.startKey)
            count += 1
            if job.exit == nil { watch(id, job.supervisorPid) }
            logger.info("re-adopted job", metadata: ["job": "\(id)", "node": "\(nodeId)",
                                                    "state": "\(job.exit.map { "ended: \($0.summary)" } ?? "running")"])
        }
        return count
    }

    /// The supervisor's and the job's pids, from the supervisor's `pid` record (the agent's own, on the agent's
    /// private folder).
    func pids(_ id: JobID) -> (Int32, Int32)? {
        guard let text = folders.record(id, "pid") else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 2, let supervisor = Int32(fields[0]), let main = Int32(fields[1]), supervisor > 1, main > 1 else { return nil }
        return (supervisor, main)
    }

    /// The job's process group (its main process's pid): read once, then kept in memory.
    func jobProcessGroup(_ id: JobID) -> Int32? {
        if let known = jobs[id]?.jobPid { return known }
        guard let (_, main) = pids(id) else { return nil }
        jobs[id]?.jobPid = main
        return main
    }

    func readExit(_ id: JobID) -> ExitStatus? {
        folders.record(id, "exit").flatMap(LocalJob.parseExit)
    }

    /// True when the part ended and all its output reached the master.
    func readyToReport(_ id: JobID, _ job: LocalJob) -> Bool {
        guard job.exit != nil else { return false }
        return StreamName.allCases.allSatisfy { (job.shipped[$0] ?? -1) >= folders.size(id, $0.rawValue) }
    }

    /// Starts a part unless this agent already has it.
    public func start(_ work: WorkItem) {
        guard !seen.contains(work.startKey) else { return }
        seen.insert(work.startKey)
        let id = work.jobId
        if jobs[id] != nil { forgetNow(id) }  // an earlier attempt of a requeued job
        var job = LocalJob(work: work, dir: folders.dir(id), supervisorPid: 0)
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
            // The folder and every file in it stay the agent's: the job gets its streams as descriptors.
            try folders.create(id)
            var files: [(name: String, bytes: [UInt8])] = [
                ("work.json", Array(try JSONEncoder().encode(work))),
                ("command", Array(work.command.utf8)),
                ("workdir", Array(work.workdir.utf8)),
                // The job's whole environment, as the master assembled it (`Job.workItem`).
                ("environ", work.environment.flatMap { Array("\($0.key)=\($0.value)".utf8) + [0] }),
                ("stdout", []),
                ("stderr", []),
            ]
            if work.stdin == true { files.append(("stdin", [])) }
            try folders.write(id, files)
            job.isChild = true
            // Its pid and exit as attributes of the folder (a supervisor started by an agent of 0.2.0 writes files).
            var args = supervisor + [job.dir, String(work.killGraceSeconds)] + (attributeRecords ? ["--attr-records"] : [])
            if let limit = work.timeLimit { args += ["--time", String(limit)] }
            if work.stdin == true { args.append("--stdin") }
            if let tty = work.tty { args += ["--tty", String(tty.rows), String(tty.columns)] }
            if let account { args += ["--user", account.name] }
            // The supervisor reports everything through the job's files (an error, too, goes to `exit`).
            job.supervisorPid = try Spawn.start(args, environment: Self.supervisorEnvironment, stdout: .devNull, stderr: .devNull,
                                                newSession: true, blocked: [SIGTERM, SIGINT, SIGHUP])
            // The master has none of this part's output yet: no need to ask it where to resume.
            job.shipped = [.stdout: 0, .stderr: 0]
            watch(id, job.supervisorPid)
            logger.info("job started", metadata: ["job": "\(id)", "node": "\(nodeId)", "rank": "\(work.rank)",
                                                 "gpus": "\(work.gpus.map(String.init).joined(separator: ","))"])
        } catch let error as JobStartError {
            job.exit = ExitStatus(error: error.message)
            logger.error("job refused", metadata: ["job": "\(id)", "node": "\(nodeId)", "error": "\(error.message)"])
        } catch {
            job.exit = ExitStatus(error: "could not start the job on \(nodeId): \(error)")
            logger.error("job could not start", metadata: ["job": "\(id)", "node": "\(nodeId)", "error": "\(error)"])
        }
        jobs[id] = job
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
            (id, job.stdinOffset == 0 ? folders.size(id, "stdin") : job.stdinOffset)
        }
    }

    /// Appends the client's stdin for the supervisor to feed; `eof` marks its end.
    func appendStdin(_ id: JobID, offset: Int64, bytes: [UInt8], eof: Bool) {
        guard var job = jobs[id], job.exit == nil else { return }
        if offset == folders.size(id, "stdin") && !bytes.isEmpty { folders.append(id, "stdin", bytes) }
        job.stdinOffset = folders.size(id, "stdin")
        if eof {
            try? folders.write(id, "stdin.eof", [])
            job.stdinDone = true
        }
        jobs[id] = job
    }

    /// The master committed these parts' ends: forget them (that attempt of each job, not a later one).
    public func forget(_ acks: [PartAck]) {
        for ack in acks {
            guard let job = jobs[ack.jobId], (job.work.attempt ?? 0) == (ack.attempt ?? 0), readyToReport(ack.jobId, job) else { continue }
            forgetNow(ack.jobId)
        }
    }

    func forgetNow(_ id: JobID) {
        let job = jobs.removeValue(forKey: id)
        watchers.removeValue(forKey: id)?.cancel()
        // Only a folder whose supervisor this agent started and reaped is recycled: one left by an earlier run of the
        // agent may still be held by a supervisor that never wrote its pid (blocked before it started the job).
        if let job, job.isChild, job.supervisorPid > 0, !unreaped.contains(job.supervisorPid), reapIfExited(job.supervisorPid) {
            folders.retire(id)
        } else {
            folders.remove(id)
        }
    }

    /// Watches a supervisor through a pidfd: when it exits, the local loop is woken at once.
    /// (Without pidfds the loop's tick still notices, a little later.)
    func watch(_ id: JobID, _ pid: Int32) {
        guard pid > 0 else { return }
        let fd = mgpu_pidfd_open(pid)
        guard fd >= 0 else { return }
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: .global())
        let exited = self.exited
        source.setEventHandler {
            source.cancel()
            exited.signal(0)
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
            if let exit = readExit(id) {
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
            if let exit = job.exit, readyToReport(id, job) {
                finished.append(FinishedPart(jobId: id, rank: job.work.rank, exit: exit, attempt: job.work.attempt))
            } else {
                running.append(PartRef(jobId: id, rank: job.work.rank, gpus: job.work.gpus, attempt: job.work.attempt))
            }
        }
        return (running, finished)
    }

    public var count: Int { jobs.count }

    /// Running parts with their GPUs and process groups, for telemetry.
    func holders() -> [TelemetryCollector.Holder] {
        jobs.filter { $0.value.exit == nil }.map { id, job in
            TelemetryCollector.Holder(job: id, gpus: job.work.gpus, session: jobProcessGroup(id))
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
                // Do not wait out a long per-job grace period: the allocation is ending. A second SIGTERM makes each
                // supervisor kill its job's group at once (it still holds the group's id; the agent may not).
                for (_, job) in jobs where job.exit == nil && supervisorAlive(job) { kill(job.supervisorPid, SIGTERM) }
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
                guard folders.size(id, stream.rawValue) > shipped,
                      let bytes = folders.read(id, stream.rawValue, offset: shipped, limit: limit), !bytes.isEmpty else { continue }
                chunks.append((id, job.work.rank, stream, shipped, bytes))
            }
        }
        return chunks
    }

    func acknowledge(_ id: JobID, _ stream: StreamName, size: Int64) {
        jobs[id]?.shipped[stream] = size
    }

    /// The master does not know this job (any more): nothing of it needs shipping.
    func dropOutput(_ id: JobID) {
        guard jobs[id] != nil else { return }
        for stream in StreamName.allCases { jobs[id]!.shipped[stream] = folders.size(id, stream.rawValue) }
    }
}

/// Why this node will not run a job, in words for its owner.
struct JobStartError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
