import Foundation
import MgpuCore
import MgpuWire

extension MasterState {
    /// Jobs checked and given ids, not committed yet (`submit`).
    public struct PreparedSubmission: Sendable {
        let jobs: [Job]
        let user: String
    }

    /// Accepts a submission: all its jobs, in one transaction, or none (with the reason). The request is checked once
    /// against the limits and the cluster before it is expanded; the jobs are encoded and committed outside the actor,
    /// so a large submission does not hold up heartbeats; they are applied (queued) only once committed.
    public nonisolated func submit(_ request: SubmitRequest) async throws -> [JobID] {
        let count = try request.check(config.submitLimits)
        let prepared = try await prepare(request, count: count)
        do {
            try store.commit(StoreChange(jobs: prepared.jobs))
        } catch {
            await finish(prepared, committed: false)
            throw error
        }
        await finish(prepared, committed: true)
        return prepared.jobs.map(\.id)
    }

    /// `submit` for jobs given one by one.
    public nonisolated func submit(_ specs: [JobSpec]) async throws -> [JobID] {
        try await submit(SubmitRequest(jobs: specs))
    }

    /// Checks a submission and gives its jobs ids and places in submission order, reserved until `finish`.
    func prepare(_ request: SubmitRequest, count: Int) throws -> PreparedSubmission {
        let user = request.jobs[0].user
        let pendingNow = pendingByUser[user, default: 0]
        if pendingNow + count > config.maxPendingPerUser {
            throw RequestError("\(user) has \(pendingNow) pending jobs; the master holds at most \(config.maxPendingPerUser) per user (--max-pending-per-user): wait for some to start, or cancel some")
        }
        let specs: [JobSpec]
        do { specs = try request.expanded() } catch { throw RequestError(error.description) }
        // The cluster checks, once per distinct request (a template's jobs share one).
        let caps = capacities(now: clock())
        var refusals: [ResourceRequest: RequestError?] = [:]
        for (i, spec) in specs.enumerated() {
            let refusal = refusals[spec.request] ?? Admission.check(command: "-", request: spec.request, nodes: caps)
            refusals[spec.request] = refusal
            if let refusal { throw specs.count == 1 ? refusal : RequestError("job \(i + 1): \(refusal.message)") }
        }
        let now = clock()
        var ids: [JobID] = []
        ids.reserveCapacity(specs.count)
        var taken = Set<JobID>()
        for _ in specs {
            var id = JobID.random(using: &rng)
            while jobs[id] != nil || reservedIDs.contains(id) || taken.contains(id) { id = JobID.random(using: &rng) }
            taken.insert(id)
            ids.append(id)
        }
        // Ended jobs leave memory after a while but stay in the store: never reuse one's id.
        for clash in try store.existingJobIDs(ids) {
            var id = JobID.random(using: &rng)
            while try jobs[id] != nil || reservedIDs.contains(id) || taken.contains(id) || store.existingJobIDs([id]).contains(id) {
                id = JobID.random(using: &rng)
            }
            taken.insert(id)
            ids[ids.firstIndex(of: clash)!] = id
        }
        var created: [Job] = []
        created.reserveCapacity(specs.count)
        for (i, spec) in specs.enumerated() {
            let name = spec.name.flatMap { $0.isEmpty ? nil : $0 } ?? Self.defaultName(spec.command)
            var job = Job(id: ids[i], seq: nextSeq + Int64(i), name: name, user: spec.user, command: spec.command,
                          workdir: spec.workdir, environment: spec.environment, request: spec.request,
                          killGraceSeconds: spec.killGraceSeconds ?? 10, submitTime: now)
            job.timeLimit = spec.timeLimit
            job.interactive = spec.interactive
            job.tty = spec.interactive == true ? spec.tty : nil
            job.requeue = spec.requeue == true ? true : nil
            created.append(job)
        }
        nextSeq += Int64(created.count)
        reservedIDs.formUnion(ids)
        pendingByUser[user, default: 0] += created.count
        return PreparedSubmission(jobs: created, user: user)
    }

    /// Ends a prepared submission: its reservations go, and once committed its jobs are queued.
    func finish(_ prepared: PreparedSubmission, committed: Bool) {
        reservedIDs.subtract(prepared.jobs.map(\.id))
        pendingByUser[prepared.user, default: 0] -= prepared.jobs.count
        guard committed, let first = prepared.jobs.first else { return }
        apply(prepared.jobs)
        if prepared.jobs.count == 1 {
            logger.info("job submitted", metadata: ["job": "\(first.id)", "user": "\(first.user)", "gpus": "\(first.request.totalGPUs)"])
        } else {
            // One submission, one line: every id is in it, so grepping a job id still finds it.
            logger.info("jobs submitted", metadata: ["count": "\(prepared.jobs.count)", "user": "\(first.user)",
                                                     "jobs": "\(prepared.jobs.map(\.id.rawValue).joined(separator: ","))"])
        }
        schedule()
    }

    static func defaultName(_ command: String) -> String {
        let first = command.split(whereSeparator: { $0 == " " || $0 == "\n" }).first.map(String.init) ?? "job"
        return String((first.split(separator: "/").last.map(String.init) ?? first).prefix(40))
    }

    /// Only a job's owner or an admin may cancel it, read its output or write its stdin.
    public func checkOwner(_ id: JobID, _ user: Credentials.User?) throws {
        guard let job = lookup(id) else { return }
        guard let user, user.admin || user.name == job.user else {
            throw OwnershipError(message: "job \(id) belongs to \(job.user): only its owner or an admin can do that")
        }
    }

    /// Cancels jobs of `user`'s (any job, for an admin). Jobs that left memory have ended: the store, read outside the
    /// actor, says how.
    public nonisolated func cancel(_ ids: [String], by user: Credentials.User? = nil) async throws -> [CancelResponse.Result] {
        var results = try await cancelInMemory(ids, by: user)
        for i in results.indices where results[i].outcome == .unknown {
            guard let id = JobID(results[i].id), let job = try store.job(id) else { continue }
            let mine = user.map { $0.admin || $0.name == job.user } ?? true
            results[i] = .init(id: id.rawValue, outcome: mine ? .alreadyFinished : .denied, state: job.state)
        }
        return results
    }

    func cancelInMemory(_ ids: [String], by user: Credentials.User?) throws -> [CancelResponse.Result] {
        let now = clock()
        var results: [CancelResponse.Result] = []
        var changed: [Job] = []
        for text in ids {
            guard let id = JobID(text), var job = jobs[id] else {
                results.append(.init(id: text, outcome: .unknown, state: nil))
                continue
            }
            if let user, !user.admin && user.name != job.user {
                results.append(.init(id: id.rawValue, outcome: .denied, state: job.state))
                continue
            }
            switch job.state {
            case .pending:
                job.cancelRequested = true
                job.reason = "cancelled while pending"
                try? job.transition(to: .cancelled, at: now)
                results.append(.init(id: id.rawValue, outcome: .cancelled, state: .cancelled))
                changed.append(job)
            case .running:
                if !job.cancelRequested {
                    job.cancelRequested = true
                    job.reason = "cancelled by user"
                    changed.append(job)
                }
                results.append(.init(id: id.rawValue, outcome: .cancelling, state: .running))
            default:
                results.append(.init(id: id.rawValue, outcome: .alreadyFinished, state: job.state))
            }
        }
        try commit(jobs: changed)
        for job in changed { logger.info("job cancel requested", metadata: ["job": "\(job.id)", "state": "\(job.state.rawValue)"]) }
        if changed.contains(where: { $0.state == .cancelled }) { schedule() }
        return results
    }

    public func jobInfo(_ id: JobID) -> JobInfo? {
        guard let job = lookup(id) else { return nil }
        return info(job, now: clock())
    }

    func info(_ job: Job, now: Double) -> JobInfo {
        var note: String?
        if job.state == .pending { note = job.waitingReason }
        if job.state == .running {
            let silent = job.parts.filter { part in
                part.exit == nil && !(nodes[part.nodeId]?.isResponding(now: now, timeout: config.nodeTimeout) ?? false)
            }
            if !silent.isEmpty { note = "node not responding: " + silent.map(\.nodeId).joined(separator: ", ") }
            else if job.cancelRequested { note = "cancelling" }
            else if job.terminating { note = "terminating: \(job.reason ?? "a part failed")" }
        }
        return JobInfo(job: job, note: note)
    }

    /// Pending and running jobs, and those that ended in the last `finishedWithin` seconds.
    public func queue(finishedWithin: Double) -> QueueResponse {
        let now = clock()
        // Sorted as (seq, id) pairs, not as whole jobs: moving Job values around was most of a listing's sort.
        let shown = jobs.values.compactMap { job in
            !job.state.isTerminal || now - (job.endTime ?? 0) <= finishedWithin ? (job.seq, job.id) : nil
        }.sorted { $0.0 < $1.0 }
        return QueueResponse(now: now, jobs: shown.map { info(jobs[$0.1]!, now: now) }, nodes: nodeInfos(now: now))
    }

    public func nodeInfos(now: Double) -> [NodeInfo] {
        let caps = Dictionary(capacities(now: now).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return nodes.values.sorted { $0.id < $1.id }.map { node in
            let cap = caps[node.id]
            let up = node.isResponding(now: now, timeout: config.nodeTimeout)
            var info = NodeInfo(id: node.id, address: node.address, state: up ? .up : .down, gpus: node.gpus,
                                busyGPUs: (cap?.busyGPUs ?? []).sorted(), cpuSlots: node.cpuSlots,
                                cpuSlotsUsed: cap?.cpuSlotsUsed ?? 0, lastSeen: node.lastSeen,
                                secondsSinceHeartbeat: max(0, now - node.lastSeen))
            if up { info.telemetry = telemetry[node.id] }
            info.outsideGPUs = (telemetry[node.id]?.gpus.filter(\.inUseOutside).map(\.index) ?? []).sorted()
            info.left = node.left
            return info
        }
    }

    // MARK: Monitoring

    /// What the dashboard shows: active jobs and those ended in the last hour (the newest 50), nodes, history.
    public func dashboardSnapshot() -> DashboardSnapshot {
        let now = clock()
        let active = jobs.values.filter { !$0.state.isTerminal }
        let ended = jobs.values.filter { $0.state.isTerminal && now - ($0.endTime ?? 0) <= 3600 }
            .sorted { ($0.endTime ?? 0) < ($1.endTime ?? 0) }.suffix(50)
        let shown = (active + ended).sorted { $0.seq < $1.seq }
        var history: [String: NodeHistoryResponse] = [:]
        for id in nodes.keys { history[id] = nodeHistory(id, minutes: 15, points: 60) }
        return DashboardSnapshot(now: now, jobs: shown.map { info($0, now: now) }, nodes: nodeInfos(now: now), history: history)
    }

    /// Waits until something the dashboard shows changes, or `seconds` pass. False once the master shuts down.
    public nonisolated func waitForDashboardChange(seconds: Double) async -> Bool {
        guard !waiters.isClosed else { return false }
        await waiters.wait("dashboard", seconds: seconds)
        return !waiters.isClosed
    }

    /// The Prometheus exposition of the cluster now.
    public func metricsText() -> [UInt8] {
        var counts: [JobState: Int] = [:]
        for job in jobs.values { counts[job.state, default: 0] += 1 }
        return metrics.render(jobs: counts, nodes: nodeInfos(now: clock()))
    }

    /// The last `minutes` of a node's readings, averaged into at most `points` points.
    public func nodeHistory(_ id: String, minutes: Double, points: Int) -> NodeHistoryResponse? {
        guard nodes[id] != nil else { return nil }
        let h = history[id] ?? NodeHistory()
        let times = h.times.elements
        let since = clock() - minutes * 60
        let start = times.firstIndex { $0 >= since } ?? times.count
        let n = times.count - start
        let bucket = max(1, Int((Double(n) / Double(max(1, points))).rounded(.up)))
        func series(_ values: [Float]) -> [Double?] {
            let slice = Array(values.suffix(n))
            return stride(from: 0, to: slice.count, by: bucket).map { i in
                let chunk = slice[i..<min(slice.count, i + bucket)].filter { !$0.isNaN && $0 >= 0 }
                return chunk.isEmpty ? nil : Double(chunk.reduce(0, +)) / Double(chunk.count)
            }
        }
        let sampled = stride(from: start, to: times.count, by: bucket).map { times[$0] }
        let gpus = h.gpuUtilization.keys.sorted().map { index in
            NodeHistoryResponse.GPUSeries(index: index, utilization: series(h.gpuUtilization[index]?.elements ?? []),
                                          memoryUsedMB: series(h.gpuMemory[index]?.elements ?? []))
        }
        return NodeHistoryResponse(node: id, times: sampled, cpuPercent: series(h.cpu.elements),
                                   memoryUsedMB: series(h.memory.elements), gpus: gpus)
    }

    // MARK: Output

    public func appendOutput(node: String, job id: JobID, rank: Int, stream: StreamName, offset: Int64, bytes: [UInt8]) throws -> Int64? {
        guard let job = jobs[id], job.parts.contains(where: { $0.rank == rank && $0.nodeId == node }) else { return nil }
        let before = output.size(id, rank, stream.rawValue)
        let size = try output.append(id, rank, stream.rawValue, offset: offset, bytes: bytes)
        if size != before { waiters.wake("job:\(id)") }
        return size
    }

    // MARK: Stdin of interactive jobs

    /// Appends what the client typed (at `offset`); `eof` closes the job's stdin.
    public func appendStdin(job id: JobID, offset: Int64, bytes: [UInt8], eof: Bool) throws -> Int64? {
        guard let job = lookup(id) else { return nil }
        guard !job.state.isTerminal else { throw RequestError("job \(id) has ended: it takes no more input") }
        guard job.interactive == true else { throw RequestError("job \(id) is not interactive: it has no stdin") }
        if offset + Int64(bytes.count) > config.maxStdinBytes {
            throw RequestError("job \(id) was sent more than \(config.maxStdinBytes) bytes of input, the master's limit (--max-stdin-bytes)")
        }
        let size = try output.append(id, 0, OutputStore.stdinFile, offset: offset, bytes: bytes)
        if eof && size >= offset + Int64(bytes.count) && !output.stdinClosed(id) { try output.closeStdin(id) }
        waiters.wake("stdin:\(id)")
        return size
    }

    /// Stdin bytes from `offset` for the agent; waits up to `wait` s when there are none.
    public func readStdin(job id: JobID, node: String, offset: Int64, wait: Double) async -> (bytes: [UInt8], size: Int64, eof: Bool)? {
        var waited = false
        while true {
            guard let job = jobs[id], job.parts.contains(where: { $0.nodeId == node && $0.rank == 0 }) else { return nil }
            let size = output.size(id, 0, OutputStore.stdinFile)
            if offset < size {
                let bytes = output.read(id, 0, OutputStore.stdinFile, offset: offset, max: 1 << 20)
                return (bytes, size, output.stdinClosed(id) && offset + Int64(bytes.count) >= size)
            }
            if output.stdinClosed(id) || job.state.isTerminal { return ([], size, true) }
            if waited || wait <= 0 { return ([], size, false) }
            await waiters.wait("stdin:\(id)", seconds: wait)
            waited = true
        }
    }

    /// Where the last `lines` lines of a stream start.
    public func tailOffset(job id: JobID, rank: Int, stream: StreamName, lines: Int) -> Int64? {
        guard lookup(id) != nil else { return nil }
        return output.tailOffset(id, rank, stream.rawValue, lines: lines)
    }

    /// Bytes of a stream from `offset`. When there are none yet, waits up to `wait` s for any change of the
    /// job (output on any stream, a state change), then answers. `complete` is true once the job has ended and
    /// every byte of the stream was returned.
    public func readOutput(job id: JobID, rank: Int, stream: StreamName, offset: Int64, wait: Double) async
        -> (bytes: [UInt8], size: Int64, complete: Bool)? {
        var waited = false
        while true {
            guard let job = jobs[id] ?? lookup(id) else { return nil }
            let size = output.size(id, rank, stream.rawValue)
            if offset < size {
                let bytes = output.read(id, rank, stream.rawValue, offset: offset, max: 4 << 20)
                let end = offset + Int64(bytes.count)
                return (bytes, size, job.state.isTerminal && end >= size)
            }
            if job.state.isTerminal { return ([], size, true) }
            if waited || wait <= 0 { return ([], size, false) }
            await waiters.wait("job:\(id)", seconds: wait)
            waited = true
        }
    }
}
