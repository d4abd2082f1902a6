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
