import Foundation
import MgpuCore
import MgpuWire
import Synchronization

/// `GET /v1/queue` as JSON, each job's object encoded once while it stays the same: a listing of 10,000 pending jobs
/// re-encoded every row with JSONEncoder (about 100 ms at the master); now only the rows that changed since the last
/// listing are. A row is the same when its job's fields are the same ones, not copies (a job that changed has new
/// ones), with the same note and live values (ListedJob.sameRow); only a changed row is made a JobInfo. The answer is
/// the same JSON object as encoding the whole QueueResponse gives.
public final class QueueJSON: Sendable {
    /// The listed job and its encoding, behind one reference (a dictionary holds its values inline in each of its, up
    /// to twice as many, buckets). Each row keeps its job's fields from being freed until a listing without it: that
    /// is what makes the fields' identity mean "unchanged". The encoding as an array: one allocation, where Data's
    /// was two. Kept as a JobInfo and Data, the rows of 13,000 ended jobs held 16.7 MB; as these, half of it.
    private final class Row: Sendable {
        let listed: ListedJob
        let json: [UInt8]
        init(_ listed: ListedJob, _ json: [UInt8]) {
            self.listed = listed
            self.json = json
        }
    }
    private let rows = Mutex<[JobID: Row]>([:])
    private let encoder: JSONEncoder

    /// The API's encoder (sorted keys), which the listing's bytes follow.
    public static var encoder: JSONEncoder { APIRouter.encoder }

    public init(encoder: JSONEncoder) { self.encoder = encoder }

    public func encode(now: Double, jobs: [ListedJob], nodes: [NodeInfo]) throws -> Data {
        let previous = rows.withLock { $0 }
        var current: [JobID: Row] = [:]
        current.reserveCapacity(jobs.count)
        // The keys in the shared encoder's order (sorted), so the bytes are what encoding the whole answer gives.
        var out = Data("{\"jobs\":[".utf8)
        for (i, job) in jobs.enumerated() {
            let row: Row
            if let kept = previous[job.job.id], kept.listed.sameRow(as: job) {
                row = kept
            } else {
                row = Row(job, Array(try encoder.encode(job.info())))
            }
            current[job.job.id] = row
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: row.json)
        }
        out.append(contentsOf: Array("],\"nodes\":".utf8))
        out.append(try encoder.encode(nodes))
        out.append(contentsOf: Array(",\"now\":".utf8))
        out.append(try encoder.encode(now))
        out.append(UInt8(ascii: "}"))
        // Only the jobs of this listing are kept: the cache is as large as the queue.
        rows.withLock { $0 = current }
        return out
    }
}
