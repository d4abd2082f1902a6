import Foundation
@testable import MgpuMaster
import MgpuCore
import MgpuWire
import Testing

/// The queue's JSON with rows kept from one listing to the next is byte for byte what encoding the whole answer
/// gives, as jobs change, end, go and come.
@Suite struct QueueJSONTests {
    static func info(_ n: Int, state: JobState = .pending, note: String? = "waiting") -> JobInfo {
        var job = Job(id: JobID(number: UInt32(n)), seq: Int64(n), name: "j\(n)", user: "u\(n % 3)", command: "echo \"\(n)\"",
                      workdir: "/tmp", environment: ["A": "1"], request: ResourceRequest(gpusPerNode: 1), submitTime: 100 + Double(n))
        if state != .pending { try! job.transition(to: .running, at: 200) }
        if state.isTerminal { try! job.transition(to: state, at: 300) }
        return JobInfo(job: job, note: note)
    }

    @Test func rowsKeptFromListingToListingGiveTheSameBytes() throws {
        let encoder = APIRouter.encoder
        let cache = QueueJSON(encoder: encoder)
        var jobs = (1...50).map { Self.info($0) }
        let nodes = [NodeInfo]()
        for round in 0..<4 {
            let queue = QueueResponse(now: 1000.25 + Double(round), jobs: jobs, nodes: nodes)
            let cached = try cache.encode(queue)
            #expect(cached == (try encoder.encode(queue)), "round \(round)")
            #expect(try JSONDecoder().decode(QueueResponse.self, from: cached).jobs == jobs)
            // Changes for the next round: one starts, one ends, one's note changes, one goes, one comes.
            jobs[round] = Self.info(round + 1, state: .running, note: nil)
            jobs[10 + round] = Self.info(11 + round, state: .completed, note: nil)
            jobs[20 + round].note = "waiting: \(round) jobs of higher priority"
            jobs.remove(at: 30)
            jobs.append(Self.info(100 + round))
        }
    }
}
