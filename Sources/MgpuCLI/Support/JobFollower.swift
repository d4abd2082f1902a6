import Foundation
import MgpuClient
import MgpuCore
import MgpuWire

/// Follows a job's output on every rank and stream, at byte offsets, until it ends: what `logs -f` and
/// `srun` print. Lines of a job with several ranks are prefixed with the rank, as `srun --label` does.
struct JobFollower {
    let master: MasterClient
    let id: String
    var offsets: [String: Int64] = [:]
    var complete: Set<String> = []
    /// Partial last line per rank and stream, so that a prefix is written only at the start of a line.
    var atLineStart: [String: Bool] = [:]
    /// How calls survive a flaky master; without one, the first failure is thrown.
    var retry = RetryPolicy(limit: 1, what: "the mgpu master")
    /// How long one wait at the master may last, in seconds.
    var longPoll: Double = 10
    /// The master answers `GET /v1/jobs/{id}/follow` (the job and all its streams in one request); false once one
    /// did not know it (an older master), and the follower reads the state and each stream with a request each.
    var masterFollows = true

    init(master: MasterClient, id: String) {
        self.master = master
        self.id = id
    }

    /// Waits while the job is pending, saying once why (`job F68FAFEC pending: waiting for 1 GPU`).
    mutating func waitForStart(announce: Bool) async throws -> JobInfo {
        var said = false
        var info = try await retry.attempt { try await master.job(id) }
        while true {
            if info.state != .pending { return info }
            if announce && !said {
                FileHandle.standardError.write(Data("job \(id) pending: \(info.note ?? "waiting")\n".utf8))
                said = true
            }
            // Wakes at the master when the job changes: with follow, the answer is the job as it is then (no output).
            if let answer = try await follow(offsets: [], seen: .pending, wait: longPoll, limit: 0) {
                info = answer.job
                continue
            }
            _ = try await retry.attempt { try await master.output(job: id, rank: 0, stream: .stdout, offset: 0, wait: longPoll) }
            info = try await retry.attempt { try await master.job(id) }
        }
    }

    /// A follow request; nil when the master does not know the route (an older one): from then on, none is made.
    mutating func follow(offsets: [Int64], seen: JobState?, wait: Double, limit: Int = FollowLimits.maxBytes) async throws
        -> FollowResponse? {
        guard masterFollows else { return nil }
        do {
            let (master, id) = (master, id)
            return try await retry.attempt { try await master.follow(job: id, offsets: offsets, seen: seen, wait: wait, limit: limit) }
        } catch let error as APIError where error.status == 404 && !error.message.hasPrefix("no job") {
            masterFollows = false
            return nil
        }
    }

    /// The offsets of every stream of `ranks` ranks, in a follow request's order.
    func allOffsets(ranks: Int) -> [Int64] {
        (0..<ranks).flatMap { rank in StreamName.allCases.map { offsets["\(rank).\($0.rawValue)"] ?? 0 } }
    }

    /// Starts each stream at its last `lines` lines (`attach --tail N`).
    mutating func startAtTail(lines: Int, ranks: Int) async throws {
        for rank in 0..<ranks {
            for stream in StreamName.allCases {
                offsets["\(rank).\(stream.rawValue)"] = try await retry.attempt {
                    try await master.tailOffset(job: id, rank: rank, stream: stream, lines: lines)
                }
            }
        }
    }

    /// Prints what is new; with `follow`, keeps going until the job has ended and all output arrived.
    /// Returns the job as it ended (or as it is, without `follow`).
    /// `known`: the job as just read (`srun` has it from waiting for the start), so it is not asked for again.
    mutating func stream(follow: Bool, known: JobInfo? = nil) async throws -> JobInfo {
        var info: JobInfo
        if let known { info = known } else { info = try await retry.attempt { try await master.job(id) } }
        // One request a round: the job and every stream; the master waits while nothing is new and the state is the same.
        // (A job of more ranks than one request's offsets can name is followed a stream at a time, below.)
        while 2 * max(1, info.parts.count) <= FollowLimits.maxOffsets,
              let answer = try await self.follow(offsets: allOffsets(ranks: max(1, info.parts.count)), seen: info.state,
                                                 wait: follow ? longPoll : 0) {
            info = answer.job
            let ranks = max(1, info.parts.count)
            var progressed = false
            for chunk in answer.streams where chunk.offset == offsets["\(chunk.rank).\(chunk.stream.rawValue)"] ?? 0 {
                if take((Array(chunk.data), chunk.size, chunk.complete), rank: chunk.rank, stream: chunk.stream, ranks: ranks) {
                    progressed = true
                }
            }
            // An ended state is final, and complete streams were read in the same answer: nothing more will come.
            if complete.count == ranks * 2 { return info }
            if !follow && !progressed { return info }
        }
        while true {
            let ranks = max(1, info.parts.count)
            var progressed = false
            for rank in 0..<ranks {
                for stream in StreamName.allCases {
                    let key = "\(rank).\(stream.rawValue)"
                    if complete.contains(key) { continue }
                    let offset = offsets[key] ?? 0
                    let out = try await retry.attempt { try await master.output(job: id, rank: rank, stream: stream, offset: offset, wait: 0) }
                    if take(out, rank: rank, stream: stream, ranks: ranks) { progressed = true }
                }
            }
            if complete.count == ranks * 2 {
                // A job read after it ended is as it stays (an ended state is final): no need to ask again.
                if info.state.isTerminal { return info }
                return try await retry.attempt { try await master.job(id) }
            }
            if !follow && !progressed { return info }
            if !progressed {
                // Wait at the master for any new output or a state change; what the wait brings is printed, not read again.
                // On a stream not complete yet (one that is would answer at once).
                let keys = (0..<ranks).flatMap { rank in StreamName.allCases.map { (rank, $0) } }
                let (rank, stream) = keys.first { !complete.contains("\($0.0).\($0.1.rawValue)") } ?? (0, .stdout)
                let offset = offsets["\(rank).\(stream.rawValue)"] ?? 0
                let out = try await retry.attempt { try await master.output(job: id, rank: rank, stream: stream, offset: offset, wait: longPoll) }
                // The job is read again only when the wait brought neither output nor the stream's end (its state
                // changed, or the wait ran out): output that came first says nothing of its state, and the end is
                // read once all streams are complete, above.
                if !take(out, rank: rank, stream: stream, ranks: ranks) && !out.complete {
                    info = try await retry.attempt { try await master.job(id) }
                }
            }
        }
    }

    /// Prints what a read of one stream brought and moves its offset on; notes when the stream is complete. True when
    /// there were new bytes.
    mutating func take(_ out: (bytes: [UInt8], size: Int64, complete: Bool), rank: Int, stream: StreamName, ranks: Int) -> Bool {
        let key = "\(rank).\(stream.rawValue)"
        if out.complete { complete.insert(key) }
        guard !out.bytes.isEmpty else { return false }
        write(out.bytes, key: key, to: stream, prefix: ranks > 1 ? "\(rank): " : nil)
        offsets[key] = (offsets[key] ?? 0) + Int64(out.bytes.count)
        return true
    }

    mutating func write(_ bytes: [UInt8], key: String, to stream: StreamName, prefix: String?) {
        let handle = stream == .stdout ? FileHandle.standardOutput : FileHandle.standardError
        guard let prefix else { handle.write(Data(bytes)); return }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var start = atLineStart[key] ?? true
        for b in bytes {
            if start { out.append(contentsOf: Array(prefix.utf8)) }
            out.append(b)
            start = b == 10
        }
        atLineStart[key] = start
        handle.write(Data(out))
    }
}

/// The exit code a foreground client (srun) returns for a job that ended.
enum JobExitCode {
    static let cancelled: Int32 = 250
    static let nodeFail: Int32 = 251
    static let timeout: Int32 = 252

    static func of(_ info: JobInfo) -> Int32 {
        switch info.state {
        case .completed: 0
        case .failed: info.exit.map { $0.error != nil ? 1 : $0.shellCode } ?? 1
        case .cancelled: cancelled
        case .nodeFail: nodeFail
        case .timeout: timeout
        case .pending, .running: 1
        }
    }
}
