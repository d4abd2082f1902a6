import MgpuCore
import Synchronization

/// A store in memory: for the in-process harness (tests, `mgpu sim`). It keeps what it is given across master restarts
/// (hand the same store to a new `MasterState`), and can be told to fail its next commits, as a full disk would.
public final class MemoryStore: StateStore {
    private let state = Mutex(State())

    private struct State {
        var jobs: [JobID: Job] = [:]
        /// The arrays its tasks belong to (as the SQLite store's index on ids finds them).
        var arrays: Set<JobID> = []
        var nodes: [String: Node] = [:]
        var usage: [String: Usage] = [:]
        var policy: SharingPolicy?
        var failures = 0
        var commits = 0
    }

    public init() {}

    /// The next `count` commits fail with "the disk is full".
    public func failNextCommits(_ count: Int) { state.withLock { $0.failures = count } }

    /// Commits so far.
    public var commits: Int { state.withLock { $0.commits } }

    public func load(endedSince: Double) throws -> StoredState {
        state.withLock { state in
            let jobs = state.jobs.values.filter { $0.endTime.map { $0 >= endedSince } ?? true }.sorted { $0.seq < $1.seq }
            return StoredState(jobs: jobs, nodes: state.nodes.values.sorted { $0.id < $1.id },
                               maxSeq: state.jobs.values.map(\.seq).max() ?? 0, usage: state.usage, policy: state.policy)
        }
    }

    public func job(_ id: JobID) throws -> Job? { state.withLock { $0.jobs[id] } }

    /// Every job it holds.
    public func allJobs() -> [Job] { state.withLock { Array($0.jobs.values) } }

    public func commit(_ change: StoreChange) throws {
        try state.withLock { state in
            if state.failures > 0 {
                state.failures -= 1
                throw StoreError(message: "the disk is full")
            }
            state.commits += 1
            for job in change.jobs {
                state.jobs[job.id] = job
                if let parent = job.id.arrayParent { state.arrays.insert(parent) }
            }
            for node in change.nodes { state.nodes[node.id] = node }
            for id in change.removedNodes { state.nodes[id] = nil }
            for id in change.removedJobs { state.jobs[id] = nil }
            for (user, usage) in change.usage { state.usage[user] = usage }
            if let policy = change.policy { state.policy = policy }
        }
    }

    public func existingJobIDs(_ ids: [JobID]) throws -> Set<JobID> {
        state.withLock { state in Set(ids.filter { state.jobs[$0] != nil || state.arrays.contains($0) }) }
    }

    public func tasks(of parent: JobID) throws -> [Job] {
        state.withLock { state in state.jobs.values.filter { $0.id.arrayParent == parent } }
    }

    public func history(_ query: HistoryQuery) throws -> [Job] {
        state.withLock { state in
            Array(state.jobs.values.filter(query.matches)
                .sorted { ($0.endTime ?? 0, $0.seq) > ($1.endTime ?? 0, $1.seq) }.prefix(max(0, query.limit)))
        }
    }

    public func pruneHistory(endedBefore time: Double) throws -> Int {
        state.withLock { state in
            let old = state.jobs.values.filter { ($0.endTime ?? .infinity) < time }.map(\.id)
            for id in old { state.jobs[id] = nil }
            return old.count
        }
    }

    public func close() throws {}
}

/// A clock the harness moves by hand.
public final class ManualClock: Sendable {
    private let time: Mutex<Double>
    public init(_ start: Double = 1_800_000_000) { time = Mutex(start) }
    public var now: Double { time.withLock { $0 } }
    public func advance(_ seconds: Double) { time.withLock { $0 += seconds } }
    public func set(_ value: Double) { time.withLock { $0 = value } }
}
