import Foundation
import MgpuCore
import MgpuWire

extension MasterState {
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

extension MasterState {
    /// The job as `GET /v1/jobs/{id}` gives it and what is new on each of its streams from `offsets` (rank 0's stdout
    /// and stderr, then rank 1's...; a stream without one from 0), at most `limit` bytes in all, shared among the streams
    /// with news, and at most `FollowLimits.maxReads` streams read. When nothing is new and the job is still in the
    /// state `seen`, waits up to `wait` s for any change of the job (output, a state change) first. One request where a
    /// follower read the state and each stream with one each. Nil: no such job. (Who may follow it, its owner or an
    /// admin, is `checkOwner`'s, as for its output.)
    public func follow(job id: JobID, offsets: [Int64], seen: JobState?, wait: Double, limit: Int) async -> FollowResponse? {
        var waited = false
        while true {
            guard let info = jobInfo(id) else { return nil }
            let ranks = max(1, info.parts.count)
            let keys = (0..<ranks).flatMap { rank in StreamName.allCases.map { (rank, $0) } }
            let from = keys.indices.map { $0 < offsets.count ? offsets[$0] : 0 }
            let sizes = keys.map { output.size(id, $0.0, $0.1.rawValue) }
            let unread = keys.indices.filter { from[$0] < sizes[$0] }
            // Unread bytes are news even when this answer has no room for them (limit 0: the state only).
            let news = limit > 0 && !unread.isEmpty
            // Each stream with news gets its share of the budget (a busy one does not hold back the others).
            let reads = Set(unread.prefix(FollowLimits.maxReads))
            let share = max(1 << 16, max(0, limit) / max(1, reads.count))
            var budget = max(0, limit)
            var streams: [StreamChunk] = []
            for (index, (rank, stream)) in keys.enumerated() {
                var bytes: [UInt8] = []
                if reads.contains(index) && budget > 0 {
                    bytes = output.read(id, rank, stream.rawValue, offset: from[index], max: min(share, budget))
                    budget -= bytes.count
                }
                let complete = info.state.isTerminal && from[index] + Int64(bytes.count) >= sizes[index]
                streams.append(StreamChunk(rank: rank, stream: stream, offset: from[index], size: sizes[index], complete: complete,
                                           data: Data(bytes)))
            }
            if news || info.state.isTerminal || info.state != seen || waited || wait <= 0 {
                return FollowResponse(job: info, streams: streams)
            }
            await waiters.wait("job:\(id)", seconds: wait)
            waited = true
        }
    }
}
