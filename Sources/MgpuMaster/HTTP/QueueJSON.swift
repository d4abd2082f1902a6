import Foundation
import MgpuCore
import MgpuWire
import Synchronization

/// `GET /v1/queue` as JSON, each job's object encoded once while it stays the same: a listing of 10,000 pending jobs
/// re-encoded every row with JSONEncoder (about 100 ms at the master); now only the rows that changed since the last
/// listing are (a job's info is compared, not its encoding). The answer is the same JSON object.
public final class QueueJSON: Sendable {
    private let rows = Mutex<[JobID: (info: JobInfo, json: Data)]>([:])
    private let encoder: JSONEncoder

    /// The API's encoder (sorted keys), which the listing's bytes follow.
    public static var encoder: JSONEncoder { APIRouter.encoder }

    public init(encoder: JSONEncoder) { self.encoder = encoder }

    public func encode(_ queue: QueueResponse) throws -> Data {
        let previous = rows.withLock { $0 }
        var current: [JobID: (info: JobInfo, json: Data)] = [:]
        current.reserveCapacity(queue.jobs.count)
        // The keys in the shared encoder's order (sorted), so the bytes are what encoding the whole answer gives.
        var out = Data("{\"jobs\":[".utf8)
        for (i, job) in queue.jobs.enumerated() {
            let json: Data
            if let kept = previous[job.id], kept.info == job { json = kept.json } else { json = try encoder.encode(job) }
            current[job.id] = (job, json)
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(json)
        }
        out.append(contentsOf: Array("],\"nodes\":".utf8))
        out.append(try encoder.encode(queue.nodes))
        out.append(contentsOf: Array(",\"now\":".utf8))
        out.append(try encoder.encode(queue.now))
        out.append(UInt8(ascii: "}"))
        // Only the jobs of this listing are kept: the cache is as large as the queue.
        rows.withLock { $0 = current }
        return out
    }
}
