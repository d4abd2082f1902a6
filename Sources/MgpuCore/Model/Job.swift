/// How a process (or one part of a job) ended.
public struct ExitStatus: Codable, Sendable, Hashable {
    /// Exit code when it exited normally.
    public var code: Int32?
    /// Signal number when it was killed by a signal.
    public var signal: Int32?
    /// Set when the process could not be started or its supervisor vanished.
    public var error: String?
    /// True when the part ended because its node was lost (the job then ends NODE_FAIL).
    public var nodeFailed: Bool?
    /// True when the part was stopped at its time limit (the job then ends TIMEOUT).
    public var timedOut: Bool?

    public init(code: Int32? = nil, signal: Int32? = nil, error: String? = nil, nodeFailed: Bool? = nil, timedOut: Bool? = nil) {
        self.code = code
        self.signal = signal
        self.error = error
        self.nodeFailed = nodeFailed
        self.timedOut = timedOut
    }

    public var succeeded: Bool { code == 0 && signal == nil && error == nil }

    /// The status as a shell reports it: the code, or 128+N for signal N.
    public var shellCode: Int32 {
        if let signal { return 128 + signal }
        return code ?? 255
    }

    public var summary: String {
        if let error { return error }
        if timedOut == true { return "time limit reached" + (signal.map { " (killed by signal \($0))" } ?? "") }
        if let signal { return "killed by signal \(signal)" }
        return "exit code \(code ?? -1)"
    }
}

/// The size of the client's terminal, for a job run under a pseudo-terminal.
public struct TerminalSize: Codable, Sendable, Hashable {
    public var rows: Int
    public var columns: Int
    public init(rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
    }
}

/// The share of a job on one node: its rank, GPUs and, once it ended, how.
public struct JobPart: Codable, Sendable, Hashable {
    public var rank: Int
    public var nodeId: String
    public var gpus: [Int]
    public var exit: ExitStatus?
    /// The agent incarnation this part was handed to, once it was.
    public var deliveredTo: String?

    public init(rank: Int, nodeId: String, gpus: [Int], exit: ExitStatus? = nil, deliveredTo: String? = nil) {
        self.rank = rank
        self.nodeId = nodeId
        self.gpus = gpus
        self.exit = exit
        self.deliveredTo = deliveredTo
    }
}

extension JobPart {
    /// "node002:gpu0,1", or "node001:gpu0-3, node002:gpu0-3" for several parts; "node001:cpu" for a CPU-only part.
    public static func placementText(_ parts: [JobPart]) -> String {
        parts.map { part in
            part.gpus.isEmpty ? "\(part.nodeId):cpu" : "\(part.nodeId):gpu\(GPUList.compact(part.gpus))"
        }.joined(separator: ", ")
    }
}

/// A job, as the master stores it. Times are seconds since the Unix epoch, passed in by the caller.
public struct Job: Codable, Sendable, Identifiable {
    // A Job is one reference to its fields, copied on write: the master keeps tens of thousands in a dictionary,
    // which holds a value inline in each of its (up to twice as many) buckets, and copies them in and out. Inline, a
    // Job took 688 bytes a bucket and each copy was a move of them and a retain of every field inside.
    @inlinable public var id: JobID {
        get { storage.fields.id }
        _modify { makeUnique(); yield &storage.fields.id }
    }
    /// Submission order; the scheduler serves jobs in this order.
    @inlinable public var seq: Int64 {
        get { storage.fields.seq }
        _modify { makeUnique(); yield &storage.fields.seq }
    }
    @inlinable public var name: String {
        get { storage.fields.name }
        _modify { makeUnique(); yield &storage.fields.name }
    }
    @inlinable public var user: String {
        get { storage.fields.user }
        _modify { makeUnique(); yield &storage.fields.user }
    }
    @inlinable public var command: String {
        get { storage.fields.command }
        _modify { makeUnique(); yield &storage.fields.command }
    }
    @inlinable public var workdir: String {
        get { storage.fields.workdir }
        _modify { makeUnique(); yield &storage.fields.workdir }
    }
    @inlinable public var environment: [String: String] {
        get { storage.fields.environment }
        _modify { makeUnique(); yield &storage.fields.environment }
    }
    @inlinable public var request: ResourceRequest {
        get { storage.fields.request }
        _modify { makeUnique(); yield &storage.fields.request }
    }
    @inlinable public var killGraceSeconds: Double {
        get { storage.fields.killGraceSeconds }
        _modify { makeUnique(); yield &storage.fields.killGraceSeconds }
    }
    @inlinable public var state: JobState {
        get { storage.fields.state }
        _modify { makeUnique(); yield &storage.fields.state }
    }
    @inlinable public var submitTime: Double {
        get { storage.fields.submitTime }
        _modify { makeUnique(); yield &storage.fields.submitTime }
    }
    @inlinable public var startTime: Double? {
        get { storage.fields.startTime }
        _modify { makeUnique(); yield &storage.fields.startTime }
    }
    @inlinable public var endTime: Double? {
        get { storage.fields.endTime }
        _modify { makeUnique(); yield &storage.fields.endTime }
    }
    @inlinable public var parts: [JobPart] {
        get { storage.fields.parts }
        _modify { makeUnique(); yield &storage.fields.parts }
    }
    @inlinable public var exit: ExitStatus? {
        get { storage.fields.exit }
        _modify { makeUnique(); yield &storage.fields.exit }
    }
    /// Why the job ended the way it did (e.g. which rank failed, "cancelled by user").
    @inlinable public var reason: String? {
        get { storage.fields.reason }
        _modify { makeUnique(); yield &storage.fields.reason }
    }
    @inlinable public var cancelRequested: Bool {
        get { storage.fields.cancelRequested }
        _modify { makeUnique(); yield &storage.fields.cancelRequested }
    }
    /// A part failed: the parts still running are being terminated.
    @inlinable public var terminating: Bool {
        get { storage.fields.terminating }
        _modify { makeUnique(); yield &storage.fields.terminating }
    }
    /// The rank whose failure ended the job (the others were terminated because of it).
    @inlinable public var failedRank: Int? {
        get { storage.fields.failedRank }
        _modify { makeUnique(); yield &storage.fields.failedRank }
    }
    /// For a distributed job: the TCP port on the rank-0 node for the rendezvous (MASTER_PORT).
    @inlinable public var rendezvousPort: Int? {
        get { storage.fields.rendezvousPort }
        _modify { makeUnique(); yield &storage.fields.rendezvousPort }
    }
    /// Wall-clock limit in seconds from the start (`--time`); the job ends TIMEOUT past it.
    @inlinable public var timeLimit: Double? {
        get { storage.fields.timeLimit }
        _modify { makeUnique(); yield &storage.fields.timeLimit }
    }
    /// Started from a foreground client: rank 0 reads the client's stdin; `tty` asks for a pseudo-terminal.
    @inlinable public var interactive: Bool? {
        get { storage.fields.interactive }
        _modify { makeUnique(); yield &storage.fields.interactive }
    }
    @inlinable public var tty: TerminalSize? {
        get { storage.fields.tty }
        _modify { makeUnique(); yield &storage.fields.tty }
    }
    /// `--requeue`: after a node failure the job goes back to the queue (avoiding that node) instead of ending.
    @inlinable public var requeue: Bool? {
        get { storage.fields.requeue }
        _modify { makeUnique(); yield &storage.fields.requeue }
    }
    /// How many times it went back to the queue.
    @inlinable public var requeues: Int? {
        get { storage.fields.requeues }
        _modify { makeUnique(); yield &storage.fields.requeues }
    }
    /// Lowers its priority by nice/1000 (`--nice`; only an admin may give a negative one).
    @inlinable public var nice: Int? {
        get { storage.fields.nice }
        _modify { makeUnique(); yield &storage.fields.nice }
    }
    /// Jobs it waits for (`--dependency`).
    @inlinable public var dependencies: [Dependency]? {
        get { storage.fields.dependencies }
        _modify { makeUnique(); yield &storage.fields.dependencies }
    }
    /// An array job's record (`--array`): the tasks that have not started. Each task that starts becomes a job of its
    /// own, `ID_N`; the record goes once none is left.
    @inlinable public var array: JobArray? {
        get { storage.fields.array }
        _modify { makeUnique(); yield &storage.fields.array }
    }
    /// A task of an array job: what it knows of the array.
    @inlinable public var arrayTask: ArrayTaskInfo? {
        get { storage.fields.arrayTask }
        _modify { makeUnique(); yield &storage.fields.arrayTask }
    }
    /// `--preemptible`: it may use idle GPUs beyond its owner's limits, and is stopped and requeued when a job that is
    /// not preemptible needs its GPUs.
    @inlinable public var preemptible: Bool? {
        get { storage.fields.preemptible }
        _modify { makeUnique(); yield &storage.fields.preemptible }
    }
    /// Being stopped to make room for this job: once its parts end it goes back to the queue.
    @inlinable public var preemptedBy: JobID? {
        get { storage.fields.preemptedBy }
        _modify { makeUnique(); yield &storage.fields.preemptedBy }
    }
    /// The longest a preempted job gets between SIGTERM and SIGKILL (its `--kill-grace`, up to this).
    public static let preemptionGrace = 60.0
    /// Its earlier runs, each ended by a requeue (PREEMPTED, or NODE_FAIL with `--requeue`).
    @inlinable public var history: [JobRun]? {
        get { storage.fields.history }
        _modify { makeUnique(); yield &storage.fields.history }
    }
    /// Its accounting record: GPU-seconds, energy, utilisation (filled in as each run ends).
    @inlinable public var usage: JobUsage? {
        get { storage.fields.usage }
        _modify { makeUnique(); yield &storage.fields.usage }
    }
    /// `--notify URL`: posted to when it ends (or is marked idle).
    @inlinable public var notify: String? {
        get { storage.fields.notify }
        _modify { makeUnique(); yield &storage.fields.notify }
    }
    /// `--output` / `--error` / `--keep-logs`: its streams in files on the node.
    @inlinable public var outputFiles: OutputFiles? {
        get { storage.fields.outputFiles }
        _modify { makeUnique(); yield &storage.fields.outputFiles }
    }

    /// The stored form: Job encodes and decodes as exactly these (the same JSON as when they were Job's own). The
    /// larger optional fields that most jobs leave nil, or set once, are `@Rare`: 8 bytes each instead of 17-96.
    /// Fields that most rows hold at their default (false, empty) are `@Defaulted`: left out of the JSON then (each key
    /// is work for every commit of every job), and read back as the default where missing.
    @usableFromInline struct Fields: Codable, Sendable {
        @usableFromInline var id: JobID
        @usableFromInline var seq: Int64
        @usableFromInline var name: String
        @usableFromInline var user: String
        @usableFromInline var command: String
        @usableFromInline var workdir: String
        @usableFromInline @Defaulted var environment: [String: String]
        @usableFromInline var request: ResourceRequest
        @usableFromInline var killGraceSeconds: Double
        @usableFromInline var state: JobState
        @usableFromInline var submitTime: Double
        @usableFromInline var startTime: Double?
        @usableFromInline var endTime: Double?
        @usableFromInline @Defaulted var parts: [JobPart]
        @usableFromInline @Rare var exit: ExitStatus?
        @usableFromInline var reason: String?
        @usableFromInline @Defaulted var cancelRequested: Bool
        @usableFromInline @Defaulted var terminating: Bool
        @usableFromInline var failedRank: Int?
        @usableFromInline var rendezvousPort: Int?
        @usableFromInline var timeLimit: Double?
        @usableFromInline var interactive: Bool?
        @usableFromInline @Rare var tty: TerminalSize?
        @usableFromInline var requeue: Bool?
        @usableFromInline var requeues: Int?
        @usableFromInline var nice: Int?
        @usableFromInline var dependencies: [Dependency]?
        @usableFromInline @Rare var array: JobArray?
        @usableFromInline @Rare var arrayTask: ArrayTaskInfo?
        @usableFromInline var preemptible: Bool?
        @usableFromInline var preemptedBy: JobID?
        @usableFromInline var history: [JobRun]?
        @usableFromInline @Rare var usage: JobUsage?
        @usableFromInline var notify: String?
        @usableFromInline @Rare var outputFiles: OutputFiles?
    }

    // Safe to share across threads: Job's setters call makeUnique() before they write, so a Storage is only written
    // while one Job value alone refers to it; a Job that another thread holds is a copy, with its own reference, and
    // any write to either copies the fields first. The pattern of Array's and Dictionary's storage. Only the accessors
    // in this file may touch `storage` (internal only because @inlinable needs it): nothing else in MgpuCore does.
    @usableFromInline final class Storage: @unchecked Sendable {
        @usableFromInline @exclusivity(unchecked) var fields: Fields
        @usableFromInline init(_ fields: Fields) { self.fields = fields }
    }

    @usableFromInline var storage: Storage

    /// An optional field kept behind a reference of its own: a write replaces it (a new box of the value's size; these
    /// change once or twice in a job's life, except an array's record, whose `array` changes as each task starts,
    /// when the record is copied anyway). Encoded and decoded as the plain optional (omitted when nil), by the
    /// overloads below.
    @usableFromInline @propertyWrapper struct Rare<Wrapped: Codable & Sendable>: Codable, Sendable {
        @usableFromInline final class Box: Sendable {
            @usableFromInline let value: Wrapped
            @usableFromInline init(_ value: Wrapped) { self.value = value }
        }
        @usableFromInline var box: Box?
        @inlinable var wrappedValue: Wrapped? {
            get { box?.value }
            set { box = newValue.map(Box.init) }
        }
        @usableFromInline init(wrappedValue: Wrapped?) { box = wrappedValue.map(Box.init) }
        @usableFromInline init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            self.init(wrappedValue: container.decodeNil() ? nil : try container.decode(Wrapped.self))
        }
        @usableFromInline func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            if let value = wrappedValue { try container.encode(value) } else { try container.encodeNil() }
        }
    }

    /// A field left out of the encoding while it holds its default (`StoredDefault`), by the overloads below.
    @usableFromInline @propertyWrapper struct Defaulted<Value: StoredDefault & Sendable>: Codable, Sendable {
        @usableFromInline var wrappedValue: Value
        @usableFromInline init(wrappedValue: Value) { self.wrappedValue = wrappedValue }
        @usableFromInline init(from decoder: any Decoder) throws {
            wrappedValue = try decoder.singleValueContainer().decode(Value.self)
        }
        @usableFromInline func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(wrappedValue)
        }
    }

    /// True when both are the same fields, not copies of them: neither has changed since one was copied from the
    /// other (a Job's fields are written only while one Job alone refers to them). False says nothing: a job changed
    /// and changed back, or made again with the same values, has fields of its own.
    @inlinable public func sharesFields(with other: Job) -> Bool { storage === other.storage }

    @inlinable mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
    }

    public init(from decoder: any Decoder) throws { storage = Storage(try Fields(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try storage.fields.encode(to: encoder) }

    public init(id: JobID, seq: Int64, name: String, user: String, command: String, workdir: String,
                environment: [String: String], request: ResourceRequest, killGraceSeconds: Double = 10,
                submitTime: Double) {
        storage = Storage(Fields(id: id, seq: seq, name: name, user: user, command: command, workdir: workdir,
                                 environment: environment, request: request, killGraceSeconds: killGraceSeconds,
                                 state: .pending, submitTime: submitTime, parts: [], cancelRequested: false,
                                 terminating: false))
    }

    /// Moves the job to `next`, enforcing the state machine.
    public mutating func transition(to next: JobState, at time: Double) throws(InvalidTransition) {
        guard state.canTransition(to: next) else { throw InvalidTransition(job: id, from: state, to: next) }
        state = next
        if next == .running { startTime = time }
        if next.isTerminal { endTime = time }
    }

    /// Back to PENDING after its node(s) failed: a fresh start later, on other nodes.
    public mutating func requeueAfterNodeFailure(excluding failedNodes: [String], reason why: String, at time: Double) throws(InvalidTransition) {
        try requeue(as: JobState.nodeFail.rawValue, excluding: failedNodes, ran: why,
                    reason: "requeued (\((requeues ?? 0) + 1)) after: \(why)", at: time)
    }

    /// Back to PENDING after it was stopped to make room for `by` (`--preemptible`): a fresh start later.
    public mutating func requeueAfterPreemption(excluding failedNodes: [String], at time: Double) throws(InvalidTransition) {
        let by = preemptedBy.map { "job \($0)" } ?? "another job"
        try requeue(as: "PREEMPTED", excluding: failedNodes, ran: "preempted by \(by)",
                    reason: "preempted by \(by), requeued (\((requeues ?? 0) + 1))", at: time)
    }

    private mutating func requeue(as state: String, excluding failedNodes: [String], ran: String, reason why: String,
                                  at time: Double) throws(InvalidTransition) {
        let run = JobRun(state: state, start: startTime ?? time, end: time, placement: placementText, reason: ran)
        try transition(to: .pending, at: time)
        history = (history ?? []) + [run]
        preemptedBy = nil
        parts = []
        startTime = nil
        exit = nil
        terminating = false
        failedRank = nil
        rendezvousPort = nil
        requeues = (requeues ?? 0) + 1
        if !failedNodes.isEmpty { request.excludedNodes = Array(Set((request.excludedNodes ?? []) + failedNodes)).sorted() }
        reason = why
    }

    /// Records how the part at `index` ended. When it failed while other parts still run (and nobody cancelled the job),
    /// the job is terminating because of it: the others get stopped, and the job ends with this part's status.
    public mutating func partEnded(_ index: Int, _ exit: ExitStatus) {
        parts[index].exit = exit
        guard !exit.succeeded, !cancelRequested, preemptedBy == nil, !terminating, parts.contains(where: { $0.exit == nil }) else { return }
        terminating = true
        failedRank = parts[index].rank
        reason = "rank \(parts[index].rank) on \(parts[index].nodeId) failed: \(exit.summary)"
    }

    /// Ends every running part on `node` with `exit` (its node was lost or removed). True when there was one.
    public mutating func partsLost(on node: String, _ exit: ExitStatus) -> Bool {
        var touched = false
        for i in parts.indices where parts[i].nodeId == node && parts[i].exit == nil {
            partEnded(i, exit)
            touched = true
        }
        return touched
    }

    /// When every part has ended: the terminal state and exit status the job ends with.
    public func outcome() -> (state: JobState, exit: ExitStatus?, reason: String?)? {
        guard !parts.isEmpty, parts.allSatisfy({ $0.exit != nil }) else { return nil }
        let failed = failedRank.flatMap { r in parts.first { $0.rank == r } } ?? parts.first { !($0.exit!.succeeded) }
        let first = failed ?? parts[0]
        let where_ = parts.count > 1 ? "rank \(first.rank) on \(first.nodeId)" : first.nodeId
        if let lost = (failed?.exit?.nodeFailed == true ? failed : nil) ?? parts.first(where: { $0.exit?.nodeFailed == true }) {
            return (.nodeFail, lost.exit, lost.exit?.error ?? "node \(lost.nodeId) failed")
        }
        if let timed = (failed?.exit?.timedOut == true ? failed : nil) ?? parts.first(where: { $0.exit?.timedOut == true }) {
            return (.timeout, timed.exit, "time limit of \(Int(timeLimit ?? 0)) s reached")
        }
        if cancelRequested { return (.cancelled, first.exit, reason ?? "cancelled") }
        if let failed { return (.failed, failed.exit, "\(where_): \(failed.exit!.summary)") }
        return (.completed, first.exit, nil)
    }

    /// Nodes this job holds GPUs or a CPU slot on while it is not terminal.
    public var isActive: Bool { state == .running }

    public var usesGPUs: Bool { request.totalGPUs > 0 }

    /// "node002:gpu0,1", or "node001:gpu0-3, node002:gpu0-3" for several parts.
    public var placementText: String { JobPart.placementText(parts) }

    /// Why a pending job waits, derived from its request.
    public var waitingReason: String {
        if let pinned = request.pinned {
            return "waiting for " + pinned.map { "\($0.nodeId):gpu\(GPUList.compact($0.gpus))" }.joined(separator: ", ")
        }
        if request.gpusPerNode == 0 { return request.nodes == 1 ? "waiting for a CPU slot" : "waiting for \(request.nodes) nodes with a CPU slot" }
        if let ids = request.gpuIds {
            let what = "GPUs " + ids.map(String.init).joined(separator: ",")
            return request.nodes == 1 ? "waiting for \(what) on one node" : "waiting for \(request.nodes) nodes with \(what) free"
        }
        var gpus = request.gpusPerNode == 1 ? "1 GPU" : "\(request.gpusPerNode) GPUs"
        if let kind = request.kindText { gpus = "\(request.gpusPerNode) \(kind)" }
        if request.nodes == 1 { return "waiting for \(gpus)" }
        return "waiting for \(request.nodes) nodes with \(gpus) each"
    }
}

/// An earlier run of a job that went back to the queue.
public struct JobRun: Codable, Sendable, Hashable {
    /// How it ended: PREEMPTED, or NODE_FAIL (requeued by `--requeue`).
    public var state: String
    public var start: Double
    public var end: Double
    /// Where it ran: "node001:gpu0,1".
    public var placement: String
    public var reason: String?
    public init(state: String, start: Double, end: Double, placement: String, reason: String?) {
        self.state = state
        self.start = start
        self.end = end
        self.placement = placement
        self.reason = reason
    }
}

public enum GPUList {
    /// [0,1,2,3] -> "0-3"; [0,1,3] -> "0,1,3"; [0,2] -> "0,2".
    public static func compact(_ gpus: [Int]) -> String {
        let sorted = gpus.sorted()
        var out: [String] = []
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            if j - i >= 2 { out.append("\(sorted[i])-\(sorted[j])") } else { out.append(contentsOf: sorted[i...j].map(String.init)) }
            i = j + 1
        }
        return out.joined(separator: ",")
    }
}

// What the stored fields' synthesized Codable calls for a `@Rare` field: the key is left out when nil, as for a plain
// optional (the generic single-value form above would write null, and require the key); and for a `@Defaulted` field:
// the key is left out while the value is its default, and a missing key reads as the default.
extension KeyedDecodingContainer {
    fileprivate func decode<W>(_ type: Job.Rare<W>.Type, forKey key: Key) throws -> Job.Rare<W> {
        Job.Rare(wrappedValue: try decodeIfPresent(W.self, forKey: key))
    }
    fileprivate func decode<V>(_ type: Job.Defaulted<V>.Type, forKey key: Key) throws -> Job.Defaulted<V> {
        Job.Defaulted(wrappedValue: try decodeIfPresent(V.self, forKey: key) ?? V.storedDefault)
    }
}

extension KeyedEncodingContainer {
    fileprivate mutating func encode<W>(_ value: Job.Rare<W>, forKey key: Key) throws {
        try encodeIfPresent(value.wrappedValue, forKey: key)
    }
    fileprivate mutating func encode<V>(_ value: Job.Defaulted<V>, forKey key: Key) throws {
        if !value.wrappedValue.isStoredDefault { try encode(value.wrappedValue, forKey: key) }
    }
}

/// A value with a default that a stored row leaves out (`Job.Defaulted`).
@usableFromInline protocol StoredDefault: Codable {
    static var storedDefault: Self { get }
    var isStoredDefault: Bool { get }
}

extension Bool: StoredDefault {
    @usableFromInline static var storedDefault: Bool { false }
    @usableFromInline var isStoredDefault: Bool { !self }
}

extension Array: StoredDefault where Element: Codable {
    @usableFromInline static var storedDefault: Self { [] }
    @usableFromInline var isStoredDefault: Bool { isEmpty }
}

extension Dictionary: StoredDefault where Key == String, Value: Codable {
    @usableFromInline static var storedDefault: Self { [:] }
    @usableFromInline var isStoredDefault: Bool { isEmpty }
}

extension Job {
    /// Task `index` of this array job, started from its record: the same job, its own id, the array's facts.
    public func task(_ index: Int) -> Job {
        var task = self
        task.id = JobID(parent: id, index: index)
        task.array = nil
        task.arrayTask = array.map(ArrayTaskInfo.init)
        task.dependencies = nil
        return task
    }
}
