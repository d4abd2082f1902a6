import MgpuCore
@testable import MgpuMaster
import MgpuWire
import Testing

/// Random clusters and histories through the real master in virtual time: jobs of one or two nodes that complete,
/// fail or run until stopped, cancels, agents that restart with or without their jobs, nodes that go silent for a
/// while or for good. After every step: no GPU runs two parts (on the nodes, and in the master's record), a running
/// job has all its parts placed at once, each node's index of running jobs is what a scan finds, the node capacities
/// kept for the scheduling passes are what a build from everything makes; at the end every job has ended.
@Suite struct RandomizedProtocolTests {
    @Test(arguments: 0..<40)
    func invariantsHold(seed: Int) async throws {
        var rng = SeededRandom(seed: UInt64(seed) &* 7919 &+ 1)
        let h = try Harness(nodeTimeout: 5, nodeLostAfter: 15, seed: UInt64(seed))
        let nodeCount = Int.random(in: 2...5, using: &rng)
        for n in 0..<nodeCount {
            // Each part: 20 % run until stopped, 20 % fail, the rest complete; 5-60 s.
            let salt = UInt64(seed * 100 + n)
            try await h.addNode("n\(n)", gpus: Int.random(in: 1...4, using: &rng), plan: { work in
                var r = SeededRandom(seed: salt &+ UInt64(UInt32(work.jobId.rawValue, radix: 16) ?? 0))
                let roll = Int.random(in: 0..<10, using: &r)
                if roll < 2 { return nil }
                return (Double(Int.random(in: 5...60, using: &r)), ExitStatus(code: roll < 4 ? 1 : 0))
            })
        }
        var jobs: [JobID] = []
        var silent: [String: Int] = [:]  // node -> steps it stays silent
        for _ in 0..<120 {
            switch Int.random(in: 0..<20, using: &rng) {
            case 0..<5:
                let multi = nodeCount > 1 && Int.random(in: 0..<4, using: &rng) == 0
                let request = ResourceRequest(gpusPerNode: Int.random(in: 1...2, using: &rng), nodes: multi ? 2 : 1)
                if let id = try? await h.submit(request: request, configure: { $0.requeue = Bool.random(using: &rng) ? true : nil }) { jobs.append(id) }
            case 5:
                if let victim = jobs.randomElement(using: &rng) { _ = try await h.master.cancel([victim.rawValue]) }
            case 6:
                let node = "n\(Int.random(in: 0..<nodeCount, using: &rng))"
                h.agents[node]!.restart(keepingJobs: Int.random(in: 0..<3, using: &rng) > 0)
            case 7:
                // Silent for a while: often long enough to be declared lost, and then it comes back.
                silent["n\(Int.random(in: 0..<nodeCount, using: &rng))"] = Int.random(in: 1...15, using: &rng)
            default:
                await h.advance(Double(Int.random(in: 1...6, using: &rng)))
            }
            for id in h.agents.keys.sorted() {
                if let steps = silent[id], steps > 0 { silent[id] = steps - 1; continue }
                _ = try await h.sync(id)
            }
            try await Self.check(h, seed: seed)
        }
        // Quiet: everything reports, time passes, every job ends (the stuck ones are cancelled).
        _ = try await h.master.cancel(jobs.map(\.rawValue))
        for _ in 0..<30 {
            await h.advance(5)
            try await h.syncAll()
            try await Self.check(h, seed: seed)
        }
        for id in jobs {
            let state = await h.state(id)
            #expect(state?.isTerminal == true, "seed \(seed): job \(id) is \(state?.rawValue ?? "gone") at the end")
        }
    }

    static func check(_ h: Harness, seed: Int) async throws {
        for (id, agent) in h.agents {
            let held = agent.running.values.flatMap(\.work.gpus)
            if Set(held).count != held.count {
                var detail: [String] = []
                for part in agent.running.values {
                    let job = await h.job(part.work.jobId)
                    detail.append("\(part.work.jobId)#\(part.work.attempt ?? 0) gpus \(part.work.gpus) ends \(part.endsAt.map { $0 - h.now } ?? -1) stopping \(part.stopping); master: \(job?.state.rawValue ?? "-") \(job?.placementText ?? "") \(job?.reason ?? "")")
                }
                Issue.record("seed \(seed): node \(id) runs two parts on one GPU:\n\(detail.joined(separator: "\n"))\nnode at the master: \(String(describing: await h.node(id)))")
            }
        }
        let queue = await h.master.queue(finishedWithin: 0)
        // The text listing, made from the jobs themselves, is the table of the JSON listing's JobInfos.
        for within in [0.0, 1e9] {
            let text = await h.master.queueListing(finishedWithin: within).render()
            #expect(text == (await h.master.queue(finishedWithin: within)).renderTable(), "seed \(seed): the text listing")
        }
        // The node capacities the passes read, kept as things change, are what a build from everything makes.
        await h.master.checkCapacityLedger(now: h.now)
        #expect(await h.master.ledgerMismatches == 0, "seed \(seed): kept node capacities differ from a build")
        let running = queue.jobs.filter { $0.state == .running }
        for id in h.agents.keys {
            let scanned = running.filter { $0.parts.contains { $0.nodeId == id } }.map(\.id).sorted()
            let indexed = await h.master.active(on: id).map(\.id)
            #expect(indexed == scanned, "seed \(seed): node \(id)'s running jobs")
        }
        var taken: Set<String> = []
        for job in queue.jobs where job.state == .running {
            #expect(job.parts.count == job.request.nodes, "seed \(seed): job \(job.id) runs on \(job.parts.count) of \(job.request.nodes) nodes")
            for part in job.parts where part.exit == nil {
                for gpu in part.gpus {
                    #expect(taken.insert("\(part.nodeId):\(gpu)").inserted, "seed \(seed): \(part.nodeId):gpu\(gpu) given to two jobs")
                }
            }
        }
    }
}
