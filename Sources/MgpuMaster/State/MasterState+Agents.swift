import Foundation
import MgpuCore
import MgpuWire

extension MasterState {
    public func register(_ request: RegisterRequest, peerAddress: String?) throws -> RegisterResponse {
        if let error = request.validationError() { throw error }
        let now = clock()
        let address = request.advertiseAddress ?? peerAddress ?? "unknown"
        var node = nodes[request.nodeId] ?? Node(id: request.nodeId, address: address, gpus: request.gpus,
                                                  cpuSlots: request.cpuSlots, now: now, incarnation: request.incarnation)
        let restarted = nodes[request.nodeId] != nil && node.incarnation != request.incarnation
        node.address = address
        node.gpus = request.gpus
        node.cpuSlots = request.cpuSlots
        node.incarnation = request.incarnation
        node.lastSeen = now
        node.registeredAt = now
        node.left = nil
        try commit(jobs: [], nodes: [node])
        downNodes.remove(node.id)
        let gpuText = node.gpus.map { "\($0.index): \($0.name)\($0.simulated ? " (simulated)" : "")" }.joined(separator: ", ")
        logger.info("node registered", metadata: ["node": "\(node.id)", "address": "\(address)", "gpus": "\(node.gpus.count)",
                                                  "detail": "\(gpuText)", "agent": "\(restarted ? "restarted" : "new")"])
        schedule()
        return RegisterResponse(pollSeconds: config.pollSeconds, heartbeatSeconds: config.heartbeatSeconds, address: address)
    }

    /// The agent's report, and (when it waits) its long-poll for work.
    public func sync(_ request: SyncRequest) async throws -> SyncResponse {
        if let error = request.validationError() { throw error }
        guard var node = nodes[request.nodeId], node.incarnation == request.incarnation else {
            return SyncResponse(reregister: true)
        }
        let now = clock()
        node.lastSeen = now
        if let port = request.freePort, (1024...65535).contains(port) { freePorts[node.id] = port }
        var outsideChanged = false
        if let sample = request.telemetry, sample.time > (telemetry[node.id]?.time ?? 0), sample.gpus.count <= 1024 {
            outsideChanged = sample.unavailableGPUs != (telemetry[node.id]?.unavailableGPUs ?? [])
            telemetry[node.id] = sample
            history[node.id, default: NodeHistory()].append(sample)
            waiters.wakeAll("dashboard")
            if outsideChanged {
                logger.info("GPUs in use outside mgpu changed", metadata: ["node": "\(node.id)",
                                                                          "gpus": "\(sample.unavailableGPUs.sorted())"])
            }
        }
        if outsideChanged { scheduleNeeded = true }
        if downNodes.remove(node.id) != nil {
            scheduleNeeded = true
            logger.info("node responding again", metadata: ["node": "\(node.id)"])
        }
        var changed: [JobID: Job] = [:]
        func job(_ id: JobID) -> Job? { changed[id] ?? jobs[id] }

        // Parts that ended: record their exit (unless it is an earlier attempt of a requeued job: then only acknowledge).
        var acknowledged: [PartAck] = []
        for finished in request.finished {
            acknowledged.append(finished.ack)
            guard var j = job(finished.jobId), j.state == .running, (finished.attempt ?? 0) == (j.requeues ?? 0),
                  let i = j.parts.firstIndex(where: { $0.rank == finished.rank && $0.nodeId == node.id }),
                  j.parts[i].exit == nil else { continue }
            j.partEnded(i, finished.exit)
            logger.info("job part ended", metadata: ["job": "\(j.id)", "node": "\(node.id)", "rank": "\(finished.rank)",
                                                     "exit": "\(finished.exit.summary)"])
            changed[j.id] = j
        }

        // Parts it runs: ours, or orphans to stop.
        var cancel: [CancelItem] = []
        var orphanGPUs: [Int] = []
        var orphanSlots = 0
        let reported = Set(request.running.map(\.jobId))
        let stale = Set(acknowledgedRecently[node.id] ?? [])
        for part in request.running where !stale.contains(PartAck(jobId: part.jobId, attempt: part.attempt)) {
            if var j = job(part.jobId), j.state == .running, (part.attempt ?? 0) == (j.requeues ?? 0),
               let i = j.parts.firstIndex(where: { $0.rank == part.rank && $0.nodeId == node.id }), j.parts[i].exit == nil {
                if j.parts[i].deliveredTo != request.incarnation {
                    j.parts[i].deliveredTo = request.incarnation
                    changed[j.id] = j
                }
            } else {
                let state = job(part.jobId)?.state.rawValue ?? "unknown"
                cancel.append(CancelItem(jobId: part.jobId, graceSeconds: job(part.jobId)?.killGraceSeconds ?? 10,
                                         reason: "job \(part.jobId) is \(state) at the master"))
                orphanGPUs.append(contentsOf: part.gpus)
                if part.gpus.isEmpty { orphanSlots += 1 }
            }
        }
        if Set(orphanGPUs) != Set(node.orphanGPUs) || orphanSlots != node.orphanCPUSlots {
            if !orphanGPUs.isEmpty {
                logger.warning("node runs jobs the master has ended; stopping them",
                               metadata: ["node": "\(node.id)", "gpus": "\(GPUList.compact(orphanGPUs))"])
            }
        }
        if orphanGPUs.sorted() != node.orphanGPUs || orphanSlots != node.orphanCPUSlots { scheduleNeeded = true }
        node.orphanGPUs = orphanGPUs.sorted()
        node.orphanCPUSlots = orphanSlots

        // Parts handed to an earlier run of this agent that it no longer has: lost with it.
        let finishedNow = Set(request.finished.map(\.jobId))
        for id in running {
            guard var j = job(id), j.state == .running else { continue }
            for i in j.parts.indices where j.parts[i].nodeId == node.id && j.parts[i].exit == nil {
                if let delivered = j.parts[i].deliveredTo, delivered != request.incarnation,
                   !reported.contains(id), !finishedNow.contains(id) {
                    j.partEnded(i, ExitStatus(error: "the agent on \(node.id) restarted without the job", nodeFailed: true))
                    changed[j.id] = j
                }
            }
        }

        if !acknowledged.isEmpty {
            acknowledgedRecently[node.id, default: []].append(contentsOf: acknowledged)
            if acknowledgedRecently[node.id]!.count > 4096 { acknowledgedRecently[node.id]!.removeFirst(2048) }
        }
        let finalized = finalize(Array(changed.values), now: now)
        try commit(jobs: finalized, nodes: [])
        nodes[node.id] = node
        schedule()

        var response = SyncResponse(cancel: cancel, acknowledged: acknowledged)
        try collectWork(for: node.id, incarnation: request.incarnation, reported: reported.union(finishedNow), into: &response)
        if response.isEmpty && request.wait > 0 {
            await wait("node:\(node.id)", seconds: min(request.wait, config.pollSeconds))
            if nodes[node.id]?.incarnation == request.incarnation {
                try collectWork(for: node.id, incarnation: request.incarnation, reported: reported.union(finishedNow), into: &response)
            }
        }
        return response
    }

    /// Parts to start and parts to stop on a node.
    func collectWork(for nodeId: String, incarnation: String, reported: Set<JobID>, into response: inout SyncResponse) throws {
        var delivered: [Job] = []
        for id in running.sorted() {
            guard var job = jobs[id] else { continue }
            for i in job.parts.indices where job.parts[i].nodeId == nodeId && job.parts[i].exit == nil {
                if job.cancelRequested || job.terminating {
                    if reported.contains(id) || job.parts[i].deliveredTo != nil {
                        response.cancel.append(CancelItem(jobId: id, graceSeconds: job.killGraceSeconds,
                                                          reason: job.cancelRequested ? "cancelled" : (job.reason ?? "another part failed")))
                    }
                    continue
                }
                guard !reported.contains(id) else { continue }
                let part = job.parts[i]
                if part.deliveredTo == nil || part.deliveredTo == incarnation {
                    var item = WorkItem(jobId: id, rank: part.rank, nodeCount: job.parts.count, gpus: part.gpus,
                                        command: job.command, workdir: job.workdir,
                                        environment: environment(of: job, rank: part.rank),
                                        killGraceSeconds: job.killGraceSeconds, user: job.user, name: job.name,
                                        timeLimit: job.timeLimit,
                                        stdin: job.interactive == true && part.rank == 0 ? true : nil,
                                        tty: part.rank == 0 ? job.tty : nil)
                    item.attempt = job.requeues
                    response.start.append(item)
                    if part.deliveredTo == nil {
                        job.parts[i].deliveredTo = incarnation
                        delivered.append(job)
                    }
                }
            }
        }
        // A cancelled part the agent never received: nothing runs, so it ends here.
        var neverStarted: [Job] = []
        for id in running {
            guard var job = jobs[id], job.cancelRequested || job.terminating else { continue }
            var touched = false
            for i in job.parts.indices where job.parts[i].nodeId == nodeId && job.parts[i].exit == nil
                && job.parts[i].deliveredTo == nil && !reported.contains(id) {
                job.parts[i].exit = ExitStatus(signal: 15, error: "stopped before it started")
                touched = true
            }
            if touched { neverStarted.append(job) }
        }
        if !delivered.isEmpty || !neverStarted.isEmpty {
            let all = Dictionary((delivered + neverStarted).map { ($0.id, $0) }, uniquingKeysWith: { a, b in
                var merged = a
                for (i, part) in b.parts.enumerated() where part.exit != nil { merged.parts[i].exit = part.exit }
                return merged
            })
            try commit(jobs: finalize(Array(all.values), now: clock()))
            if !neverStarted.isEmpty { schedule() }
        }
    }

    /// The submitter's environment plus, for every part, MGPU_NODELIST and, for a distributed job, the
    /// rendezvous variables torchrun and torch.distributed read.
    func environment(of job: Job, rank: Int) -> [String: String] {
        var env = job.environment
        env["MGPU_NODELIST"] = job.parts.map(\.nodeId).joined(separator: ",")
        guard job.request.distributed, let first = job.parts.first else { return env }
        env["MASTER_ADDR"] = nodes[first.nodeId]?.address ?? first.nodeId
        env["MASTER_PORT"] = String(job.rendezvousPort ?? 29500)
        env["NNODES"] = String(job.parts.count)
        env["NODE_RANK"] = String(rank)
        let perNode = max(1, job.parts[rank].gpus.count)
        env["NPROC_PER_NODE"] = String(perNode)
        env["WORLD_SIZE"] = String(job.parts.reduce(0) { $0 + max(1, $1.gpus.count) })
        return env
    }

    /// The agent leaves: its node takes no more work until it registers again.
    public func deregister(_ request: DeregisterRequest) throws {
        if let error = request.validationError() { throw error }
        guard var node = nodes[request.nodeId], node.incarnation == request.incarnation else {
            throw RequestError("node \(request.nodeId) is not registered with that incarnation")
        }
        node.left = true
        try commit(jobs: [], nodes: [node])
        downNodes.insert(node.id)
        logger.warning("node left", metadata: ["node": "\(node.id)", "reason": "\(request.reason)"])
    }

    /// An admin forgets a node (`mgpu admin node remove`): the parts it ran end NODE_FAIL (or requeue), and it leaves
    /// the cluster until an agent enrols that id again. False when the master does not know it.
    public func removeNode(_ id: String, by admin: String) throws -> Bool {
        guard nodes[id] != nil else { return false }
        let now = clock()
        let lost = ExitStatus(error: "node \(id) was removed by \(admin)", nodeFailed: true)
        var changed: [Job] = []
        for jobId in running {
            guard var job = jobs[jobId], job.partsLost(on: id, lost) else { continue }
            changed.append(job)
        }
        try commit(jobs: finalize(changed, now: now), removingNodes: [id])
        downNodes.remove(id)
        telemetry[id] = nil
        history[id] = nil
        freePorts[id] = nil
        acknowledgedRecently[id] = nil
        waiters.wakeAll("node:\(id)")
        waiters.wakeAll("dashboard")
        logger.warning("node removed", metadata: ["node": "\(id)", "by": "\(admin)", "jobs": "\(changed.map(\.id.rawValue).joined(separator: ","))"])
        schedule()
        return true
    }

    /// Ends the jobs whose parts have all ended.
    func finalize(_ changed: [Job], now: Double) -> [Job] {
        changed.map { job in
            var job = job
            guard job.state == .running, let outcome = job.outcome() else { return job }
            if outcome.state == .nodeFail, job.requeue == true, !job.cancelRequested {
                let lost = job.parts.filter { $0.exit?.nodeFailed == true }.map(\.nodeId)
                do {
                    try job.requeueAfterNodeFailure(excluding: lost, reason: outcome.reason ?? "node failure", at: now)
                    logger.warning("job requeued", metadata: ["job": "\(job.id)", "node": "\(lost.joined(separator: ","))",
                                                             "requeues": "\(job.requeues ?? 0)", "reason": "\(outcome.reason ?? "-")"])
                    return job
                } catch {}
            }
            job.exit = outcome.exit
            job.reason = outcome.reason
            try? job.transition(to: outcome.state, at: now)
            logger.info("job ended", metadata: ["job": "\(job.id)", "state": "\(job.state.rawValue)",
                                                "exit": "\(job.exit?.summary ?? "-")"])
            return job
        }
    }

    // MARK: Liveness

    /// Marks silent nodes DOWN, and ends the jobs of nodes silent past `nodeLostAfter` as NODE_FAIL.
    public func checkLiveness() {
        let now = clock()
        var changed: [Job] = []
        for node in nodes.values {
            let silence = now - node.lastSeen
            if silence > config.nodeTimeout, downNodes.insert(node.id).inserted {
                waiters.wakeAll("dashboard")
                logger.warning("node not responding", metadata: ["node": "\(node.id)", "silent": "\(Int(silence))s"])
            }
            guard silence > config.nodeLostAfter else { continue }
            let lost = ExitStatus(error: "node \(node.id) lost: no heartbeat for \(Int(silence)) s", nodeFailed: true)
            for id in running {
                guard var job = jobs[id], job.partsLost(on: node.id, lost) else { continue }
                changed.append(job)
            }
        }
        if !changed.isEmpty {
            do {
                try commit(jobs: finalize(changed, now: now))
            } catch {
                logger.error("could not record lost nodes: \(error)")
            }
        }
        // Every tick, whether or not anything was marked as changed: a safety net for what time alone changes.
        schedule(force: true)
        pruneEnded(now: now, every: min(30, max(0.5, config.keepEndedSeconds / 4)))
    }
}
