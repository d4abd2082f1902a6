@testable import MgpuMaster
import MgpuCore
import Testing

/// The pending queue, as jobs come, start, are cancelled and are requeued, is the plain list of waiting jobs sorted
/// by submission number (first come first for equal numbers), with its count of CPU-only jobs.
@Suite struct PendingQueueTests {
    @Test(arguments: 0..<20) func staysTheSortedListOfWaitingJobs(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed))
        var queue = PendingQueue()
        var model: [(id: JobID, seq: Int64, cpuOnly: Bool)] = []
        var nextSeq: Int64 = 0, nextID: UInt32 = 1
        func job(_ seq: Int64, cpuOnly: Bool) -> Job {
            defer { nextID += 1 }
            return Job(id: JobID(number: nextID), seq: seq, name: "j", user: "u", command: "c", workdir: "/", environment: [:],
                       request: ResourceRequest(gpusPerNode: cpuOnly ? 0 : 1), submitTime: 0)
        }
        for step in 0..<400 {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5:
                // Submissions: one or a batch, at the end; now and then a requeued job, back at its old place.
                let requeued = !model.isEmpty && Bool.random(using: &rng) && step % 3 == 0
                for _ in 0..<Int.random(in: 1...(requeued ? 1 : 30), using: &rng) {
                    let seq = requeued ? Int64.random(in: 0...nextSeq, using: &rng) : nextSeq
                    if !requeued { nextSeq += 1 }
                    let new = job(seq, cpuOnly: Int.random(in: 0..<4, using: &rng) == 0)
                    queue.insert(new)
                    let at = model.firstIndex { $0.seq > seq } ?? model.endIndex
                    model.insert((new.id, seq, new.request.isCPUOnly), at: at)
                }
            default:
                // Jobs leave: a few (starts), or many at once (a cancel of a whole submission).
                guard !model.isEmpty else { continue }
                let count = Int.random(in: 0..<4, using: &rng) == 0 ? Int.random(in: 17...60, using: &rng) : Int.random(in: 1...8, using: &rng)
                var leaving: [JobID: Int64] = [:]
                for _ in 0..<count {
                    let pick = model[Int.random(in: 0..<model.count, using: &rng)]
                    leaving[pick.id] = pick.seq
                }
                queue.remove(leaving)
                model.removeAll { leaving[$0.id] != nil }
            }
            #expect(queue.jobs.map(\.id) == model.map(\.id), "seed \(seed), step \(step): the queue's order")
            #expect(queue.cpuOnly == model.filter(\.cpuOnly).count, "seed \(seed), step \(step): CPU-only count")
        }
    }
}
