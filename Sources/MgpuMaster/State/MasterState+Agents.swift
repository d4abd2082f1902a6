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
        unreported.insert(node.id)
        if let unavailable = unavailableGPUs[node.id] { setUnavailable(unavailable, node: node.id) }   // counted against the GPUs it has now
        let gpuText = node.gpus.map { "\($0.index): \($0.name)\($0.simulated ? " (simulated)" : "")" }.joined(separator: ", ")
        logger.info("node registered", metadata: ["node": "\(node.id)", "address": "\(address)", "gpus": "\(node.gpus.count)",
                                                  "detail": "\(gpuText)", "agent": "\(restarted ? "restarted" : "new")"])
        schedule()
        return RegisterResponse(pollSeconds: config.pollSeconds, heartbeatSeconds: config.heartbeatSeconds, address: address)
    }

    /// The agent's report, and (when it waits) its long-poll for work. The rules are `Reconciler`'s; this validates,
    /// keeps the node's liveness and telemetry, commits what the reconciler returns, and answers.
    public func sync(_ request: SyncRequest) async throws -> SyncResponse {
        if let error = request.validationError() { throw error }
        guard var node = nodes[request.nodeId], node.incarnation == request.incarnation else {
            return SyncResponse(reregister: true)
        }
        let now = clock()
        node.lastSeen = now
        noteReport(request, node: node.id)
        switch NodeHealth.change(current: node.drain, failure: NodeHealth.failure(telemetry[node.id], gpuCount: node.gpus.count)) {
        case .none: break
        case .drain(let reason):
            node.drain = NodeDrain(reason: reason, by: NodeHealth.drainer, at: now)
            try commit(jobs: [], nodes: [node])
            logger.warning("node drained itself", metadata: ["node": "\(node.id)", "reason": "\(reason)"])
        case .resume:
            node.drain = nil
            try commit(jobs: [], nodes: [node])
            scheduleNeeded = true
            logger.info("node healthy again: resumed", metadata: ["node": "\(node.id)"])
        }

        let result = Reconciler.sync(node: node.id, incarnation: request.incarnation, running: request.running,
                                     finished: request.finished, job: { self.jobs[$0] }, active: active(on: node.id),
                                     recentlyAcknowledged: acknowledgedRecently[node.id]?.set ?? [], now: now)
        try commit(jobs: result.changed)
        log(result.events)
        if result.orphanGPUs != node.orphanGPUs || result.orphanCPUSlots != node.orphanCPUSlots {
            if !result.orphanGPUs.isEmpty {
                logger.warning("node runs jobs the master has ended; stopping them",
                               metadata: ["node": "\(node.id)", "gpus": "\(GPUList.compact(result.orphanGPUs))"])
            }
            scheduleNeeded = true
        }
        node.orphanGPUs = result.orphanGPUs
        node.orphanCPUSlots = result.orphanCPUSlots
        setNode(node, id: node.id)
        if unreported.remove(node.id) != nil { scheduleNeeded = true }
        if !result.acknowledged.isEmpty {
            acknowledgedRecently[node.id, default: AcknowledgedParts()].append(contentsOf: result.acknowledged)
        }
        schedule()

        var response = SyncResponse(cancel: result.cancel, acknowledged: result.acknowledged)
        let reported = Set(request.running.map(\.jobId)).union(request.finished.map(\.jobId))
        try deliverWork(to: node.id, incarnation: request.incarnation, reported: reported, into: &response)
        if response.isEmpty && request.wait > 0 && !waiters.isClosed {
            await waiters.wait("node:\(node.id)", seconds: min(request.wait, config.pollSeconds))
            if nodes[node.id]?.incarnation == request.incarnation {
                try deliverWork(to: node.id, incarnation: request.incarnation, reported: reported, into: &response)
            }
        }
        return response
    }

    /// A report's news besides its parts: a free port for rendezvous, telemetry, the node answering again.
    private func noteReport(_ request: SyncRequest, node id: String) {
        if let port = request.freePort, (1024...65535).contains(port) { freePorts[id] = port }
        if let sample = request.telemetry?.sanitized(), sample.time > (telemetry[id]?.time ?? 0), sample.gpus.count <= 1024 {
            let outside = sample.unavailableGPUs
            let outsideChanged = outside != (unavailableGPUs[id] ?? [])
            account(sample, since: telemetry[id], node: id)
            telemetry[id] = sample
            setUnavailable(outside, node: id)
            history[id, default: NodeHistory()].append(sample)
            waiters.wake("dashboard")
            if outsideChanged {
                scheduleNeeded = true
                logger.info("GPUs unavailable (unhealthy, or in use outside mgpu) changed",
                            metadata: ["node": "\(id)", "gpus": "\(sample.unavailableGPUs.sorted())", "unhealthy": "\(sample.unhealthyGPUs)"])
            }
        }
        if downNodes.remove(id) != nil {
            scheduleNeeded = true
            logger.info("node responding again", metadata: ["node": "\(id)"])
        }
    }

    /// The RUNNING jobs with a part on `node`.
    func active(on node: String) -> [Job] {
        (runningOn[node] ?? []).sorted().compactMap { jobs[$0] }
    }

    /// Parts to start and to stop on a node (`Reconciler.work`), committed before they are handed out.
    func deliverWork(to node: String, incarnation: String, reported: Set<JobID>, into response: inout SyncResponse) throws {
        let work = Reconciler.work(for: node, incarnation: incarnation, reported: reported, active: active(on: node),
                                   nodes: nodes, now: clock())
        if !work.changed.isEmpty {
            try commit(jobs: work.changed)
            log(work.events)
            schedule()
        }
        response.start += work.start
        response.cancel += work.cancel
    }

    /// One log line per event, with its job and node.
    func log(_ events: [Reconciler.Event]) {
        for event in events {
            switch event {
            case let .partEnded(job, node, rank, exit):
                logger.info("job part ended", metadata: ["job": "\(job)", "node": "\(node)", "rank": "\(rank)", "exit": "\(exit.summary)"])
            case let .requeued(job, lost, requeues, reason):
                logger.warning("job requeued", metadata: ["job": "\(job)", "node": "\(lost.joined(separator: ","))",
                                                         "requeues": "\(requeues)", "reason": "\(reason)"])
            case let .preempted(job, by, requeues):
                logger.info("job preempted", metadata: ["job": "\(job)", "by": "\(by)", "requeues": "\(requeues)"])
            case let .ended(job, state, exit):
                logger.info("job ended", metadata: ["job": "\(job)", "state": "\(state.rawValue)", "exit": "\(exit?.summary ?? "-")"])
            case .delivered:
                break
            }
        }
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
    /// `mgpu admin node drain`: the node takes no new job; what runs there finishes. Nil: no such node.
    public func drainNode(_ id: String, reason: String, by admin: String) throws -> NodeInfo? {
        guard var node = nodes[id] else { return nil }
        guard reason.unicodeScalars.count <= 200, !reason.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw RequestError("a drain reason is one line of at most 200 characters")
        }
        let text = reason.trimmingCharacters(in: .whitespaces)
        node.drain = NodeDrain(reason: text.isEmpty ? "drained" : text, by: admin, at: clock())
        try commit(jobs: [], nodes: [node])
        logger.info("node drained", metadata: ["node": "\(id)", "by": "\(admin)", "reason": "\(node.drain!.reason)"])
        waiters.wake("dashboard")
        return nodeInfos(now: clock()).first { $0.id == id }
    }

    /// `mgpu admin node resume`: the node takes jobs again. Nil: no such node.
    public func resumeNode(_ id: String, by admin: String) throws -> NodeInfo? {
        guard var node = nodes[id] else { return nil }
        guard node.drain != nil else { return nodeInfos(now: clock()).first { $0.id == id } }
        node.drain = nil
        try commit(jobs: [], nodes: [node])
        logger.info("node resumed", metadata: ["node": "\(id)", "by": "\(admin)"])
        waiters.wake("dashboard")
        scheduleNeeded = true
        schedule()
        return nodeInfos(now: clock()).first { $0.id == id }
    }

    public func removeNode(_ id: String, by admin: String) throws -> Bool {
        guard nodes[id] != nil else { return false }
        let lost = ExitStatus(error: "node \(id) was removed by \(admin)", nodeFailed: true)
        let (changed, events) = Reconciler.nodesLost([(id, lost)], active: active(on: id), now: clock())
        try commit(jobs: changed, removingNodes: [id])
        log(events)
        downNodes.remove(id)
        unreported.remove(id)
        telemetry[id] = nil
        setUnavailable([], node: id)
        history[id] = nil
        freePorts[id] = nil
        acknowledgedRecently[id] = nil
        waiters.wake("node:\(id)")
        waiters.wake("dashboard")
        logger.warning("node removed", metadata: ["node": "\(id)", "by": "\(admin)", "jobs": "\(changed.map(\.id.rawValue).joined(separator: ","))"])
        schedule()
        return true
    }

    // MARK: Liveness

    /// Marks silent nodes DOWN, and ends the jobs of nodes silent past `nodeLostAfter` as NODE_FAIL (or requeues them).
    public func checkLiveness() {
        let now = clock()
        var lost: [(node: String, exit: ExitStatus)] = []
        for node in nodes.values {
            let silence = now - node.lastSeen
            if silence > config.nodeTimeout, downNodes.insert(node.id).inserted {
                waiters.wake("dashboard")
                logger.warning("node not responding", metadata: ["node": "\(node.id)", "silent": "\(Int(silence))s"])
            }
            if silence > config.nodeLostAfter {
                lost.append((node.id, ExitStatus(error: "node \(node.id) lost: no heartbeat for \(Int(silence)) s", nodeFailed: true)))
            }
        }
        if !lost.isEmpty {
            let lostIds = Set(lost.map(\.node))
            let active = running.compactMap { jobs[$0] }.filter { $0.parts.contains { lostIds.contains($0.nodeId) && $0.exit == nil } }
            let (changed, events) = Reconciler.nodesLost(lost, active: active, now: now)
            do {
                try commit(jobs: changed)
                log(events)
            } catch {
                logger.error("could not record lost nodes: \(error)")
            }
        }
        checkIdle(now: now)
        trimHeap(now: now)
        checkCapacityLedger(now: now, every: 15)
        // Every tick, whether or not anything was marked as changed: a safety net for what time alone changes.
        schedule(force: true)
        pruneEnded(now: now, every: min(30, max(0.5, config.keepEndedSeconds / 4)))
    }
}
