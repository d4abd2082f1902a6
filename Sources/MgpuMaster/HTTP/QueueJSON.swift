import Foundation
import MgpuCore
import MgpuWire
import Synchronization

/// `GET /v1/queue` as JSON, each job's object encoded once while it stays the same: a listing of 10,000 pending jobs
/// re-encoded every row with JSONEncoder (about 100 ms at the master); now only the rows that changed since the last
/// listing are (a job's info is compared, not its encoding). The answer is the same JSON object.
public final class QueueJSON: Sendable {
    /// A job's info and its encoding, behind one reference: a dictionary holds its values inline in each of its (up to
    /// twice as many) buckets, and a JobInfo inline is large. Kept as a tuple, `mgpu queue --json` of 19,000 jobs left
    /// the master holding 27 MiB more; as a reference, 21.
    private final class Row: Sendable {
        let info: JobInfo
        let json: Data
        init(_ info: JobInfo, _ json: Data) {
            self.info = info
            self.json = json
        }
    }
    private let rows = Mutex<[JobID: Row]>([:])
    private let encoder: JSONEncoder

    /// The API's encoder (sorted keys), which the listing's bytes follow.
    public static var encoder: JSONEncoder { APIRouter.encoder }

    public init(encoder: JSONEncoder) { self.encoder = encoder }

    public func encode(_ queue: QueueResponse) throws -> Data {
        let previous = rows.withLock { $0 }
        var current: [JobID: Row] = [:]
        current.reserveCapacity(queue.jobs.count)
        // The keys in the shared encoder's order (sorted), so the bytes are what encoding the whole answer gives.
        var out = Data("{\"jobs\":[".utf8)
        for (i, job) in queue.jobs.enumerated() {
            let row: Row
            if let kept = previous[job.id], kept.info == job { row = kept } else { row = Row(job, try encoder.encode(job)) }
            current[job.id] = row
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(row.json)
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
