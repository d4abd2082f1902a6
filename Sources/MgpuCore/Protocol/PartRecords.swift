/// The agent–master protocol's records of job parts: what a node is told to run (`WorkItem`) or stop (`CancelItem`),
/// and what it reports (`PartRef`, `FinishedPart`, acknowledged as `PartAck`). They are model values, read by the pure
/// reconciler (`Reconciler`); the HTTP messages in MgpuWire carry them as they are.

/// A job part the agent runs or has run.
public struct PartRef: Codable, Sendable, Hashable {
    public var jobId: JobID
    public var rank: Int
    public var gpus: [Int]
    /// The job's attempt (`WorkItem.attempt`); nil: 0.
    public var attempt: Int?
    public init(jobId: JobID, rank: Int, gpus: [Int], attempt: Int? = nil) {
        self.jobId = jobId
        self.rank = rank
        self.gpus = gpus
        self.attempt = attempt
    }
}

public struct FinishedPart: Codable, Sendable, Hashable {
    public var jobId: JobID
    public var rank: Int
    public var exit: ExitStatus
    /// The job's attempt this part belonged to: a report of an earlier attempt of a requeued job changes nothing.
    public var attempt: Int?
    public init(jobId: JobID, rank: Int, exit: ExitStatus, attempt: Int? = nil) {
        self.jobId = jobId
        self.rank = rank
        self.exit = exit
        self.attempt = attempt
    }

    public var ack: PartAck { PartAck(jobId: jobId, attempt: attempt) }
}

/// A finished part the master has committed: the agent may forget that attempt of the job.
public struct PartAck: Codable, Sendable, Hashable {
    public var jobId: JobID
    public var attempt: Int?
    public init(jobId: JobID, attempt: Int?) {
        self.jobId = jobId
        self.attempt = attempt == 0 ? nil : attempt
    }
}

/// Work for one node: one part of a job.
public struct WorkItem: Codable, Sendable, Hashable {
    public var jobId: JobID
    public var rank: Int
    public var nodeCount: Int
    public var gpus: [Int]
    public var command: String
    public var workdir: String
    public var environment: [String: String]
    public var killGraceSeconds: Double
    public var user: String
    public var name: String
    public var timeLimit: Double?
    /// This part reads the client's stdin (rank 0 of an interactive job).
    public var stdin: Bool?
    public var tty: TerminalSize?
    /// How many times the job went back to the queue before this start (`--requeue`): a requeued job placed again on a
    /// node that ran an earlier attempt is new work there. Nil: 0.
    public var attempt: Int?

    /// What an agent tells one start of a part from another by.
    public var startKey: String { "\(jobId)#\(rank)#\(attempt ?? 0)" }

    public init(jobId: JobID, rank: Int, nodeCount: Int, gpus: [Int], command: String, workdir: String,
                environment: [String: String], killGraceSeconds: Double, user: String, name: String,
                timeLimit: Double? = nil, stdin: Bool? = nil, tty: TerminalSize? = nil) {
        self.timeLimit = timeLimit
        self.stdin = stdin
        self.tty = tty
        self.jobId = jobId
        self.rank = rank
        self.nodeCount = nodeCount
        self.gpus = gpus
        self.command = command
        self.workdir = workdir
        self.environment = environment
        self.killGraceSeconds = killGraceSeconds
        self.user = user
        self.name = name
    }
}

public struct CancelItem: Codable, Sendable, Hashable {
    public var jobId: JobID
    public var graceSeconds: Double
    public var reason: String
    public init(jobId: JobID, graceSeconds: Double, reason: String) {
        self.jobId = jobId
        self.graceSeconds = graceSeconds
        self.reason = reason
    }
}

