import Foundation
public import MgpuCore

/// `GET /v1/jobs/{id}/follow`: a job and what is new on each of its streams, in one answer. `srun`, `attach` and
/// `logs -f` follow a job with it where they read its state and each stream of each rank with a request each.
public struct FollowResponse: Codable, Sendable, Equatable {
    public var job: JobInfo
    /// Every stream of every rank, in order: rank 0's stdout and stderr, then rank 1's, and so on.
    public var streams: [StreamChunk]

    public init(job: JobInfo, streams: [StreamChunk]) {
        self.job = job
        self.streams = streams
    }
}

/// One stream's bytes from the offset asked for.
public struct StreamChunk: Codable, Sendable, Equatable {
    public var rank: Int
    public var stream: StreamName
    /// Where `data` starts: the offset asked for.
    public var offset: Int64
    /// The bytes of the stream the master holds.
    public var size: Int64
    /// The job has ended and `data` reaches the end of the stream: nothing more will come.
    public var complete: Bool
    /// Base64 in JSON.
    public var data: Data

    public init(rank: Int, stream: StreamName, offset: Int64, size: Int64, complete: Bool, data: Data) {
        self.rank = rank
        self.stream = stream
        self.offset = offset
        self.size = size
        self.complete = complete
        self.data = data
    }
}

/// The limits of a follow request, shared by the master (which refuses more) and the client.
public enum FollowLimits {
    /// Bytes of output in one answer, all streams together.
    public static let maxBytes = 4 << 20
    /// Offsets in one request: two streams of each of 1,024 ranks (about 40 KB of address at most, within what the
    /// master reads of a request's head). Clients follow jobs of more ranks a stream at a time.
    public static let maxOffsets = 2_048
    /// Streams read for one answer; the others answer with no bytes (their news brings the client back at once).
    public static let maxReads = 64
}
