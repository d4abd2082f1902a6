public import MgpuCore

/// A job as the API lists it.
public struct JobInfo: Codable, Sendable, Equatable {
    public var id: JobID
    public var name: String
    public var user: String
    public var state: JobState
    public var command: String
    public var workdir: String
    public var request: ResourceRequest
    public var submitTime: Double
    public var startTime: Double?
    public var endTime: Double?
    public var parts: [JobPart]
    public var exit: ExitStatus?
    public var reason: String?
    public var cancelRequested: Bool
    /// For a pending job: what it waits for. For a running job on a silent node: "node not responding".
    public var note: String?
    public var timeLimit: Double?
    public var interactive: Bool?
    public var requeue: Bool?
    public var requeues: Int?
    public var nice: Int?
    public var dependencies: [Dependency]?
    /// An array job's record: the tasks not started (`pendingText` after the id is how `mgpu queue` shows it).
    public var array: JobArray?
    /// A task of an array job: what it knows of its array.
    public var arrayTask: ArrayTaskInfo?
    /// `--preemptible`; and, while it is being stopped for another job, that job.
    public var preemptible: Bool?
    public var preemptedBy: JobID?
    /// Its earlier runs, each ended by a requeue (PREEMPTED, or NODE_FAIL with `--requeue`).
    public var history: [JobRun]?
    /// Its accounting so far: GPU-seconds, energy, utilisation.
    public var usage: JobUsage?
    /// Whether it notifies a URL when it ends (the URL is a secret of its owner's: a webhook's address).
    public var notifies: Bool?
    /// `--output` / `--error` patterns, and whether the master keeps the output too.
    public var outputFiles: OutputFiles?
    /// A running job marked idle (its GPUs below the idle threshold since then).
    public var idleSince: Double?
    /// A pending job's priority and its parts, under the fair-share policy.
    public var priority: Priority?
    /// When the highest-priority waiting job will start at the latest, by the running jobs' time limits.
    public var expectedStart: Double?

    public init(job: Job, note: String?) {
        id = job.id
        name = job.name
        user = job.user
        state = job.state
        command = job.command
        workdir = job.workdir
        request = job.request
        submitTime = job.submitTime
        startTime = job.startTime
        endTime = job.endTime
        parts = job.parts
        exit = job.exit
        reason = job.reason
        cancelRequested = job.cancelRequested
        timeLimit = job.timeLimit
        interactive = job.interactive
        requeue = job.requeue
        requeues = job.requeues
        nice = job.nice
        dependencies = job.dependencies
        array = job.array
        arrayTask = job.arrayTask
        preemptible = job.preemptible
        preemptedBy = job.preemptedBy
        history = job.history
        usage = job.usage
        notifies = job.notify != nil ? true : nil
        outputFiles = job.outputFiles
        self.note = note
    }

    public var placementText: String { JobPart.placementText(parts) }
}

/// `GET /v1/queue`: jobs and nodes in one answer.
public struct QueueResponse: Codable, Sendable {
    public var now: Double
    public var jobs: [JobInfo]
    public var nodes: [NodeInfo]
    public init(now: Double, jobs: [JobInfo], nodes: [NodeInfo]) {
        self.now = now
        self.jobs = jobs
        self.nodes = nodes
    }
}
