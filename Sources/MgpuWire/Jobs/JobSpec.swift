public import MgpuCore

/// One job as a client submits it.
public struct JobSpec: Codable, Sendable {
    public var name: String?
    public var user: String
    public var command: String
    public var workdir: String
    public var environment: [String: String]
    public var request: ResourceRequest
    public var killGraceSeconds: Double?
    /// Wall-clock limit in seconds (`--time`); nil: none.
    public var timeLimit: Double?
    /// A foreground job: rank 0 reads the client's stdin (sent to `/v1/jobs/{id}/stdin`).
    public var interactive: Bool?
    /// Run under a pseudo-terminal of this size (the client's stdout is a terminal).
    public var tty: TerminalSize?
    /// `--requeue`: back to the queue after a node failure.
    public var requeue: Bool?
    /// `--nice N`: lowers the job's priority (only an admin may give a negative value).
    public var nice: Int?
    /// `--dependency`: jobs it waits for.
    public var dependencies: [Dependency]?
    /// `--array`: one job record for many tasks.
    public var array: ArrayRequest?
    /// `--preemptible`: runs on idle GPUs past limits; stopped and requeued when another job needs them.
    public var preemptible: Bool?
    /// `--notify URL`: where the master posts a JSON event when the job ends (or is marked idle).
    public var notify: String?
    /// `--output` / `--error` / `--keep-logs`: the job's streams in files on the node (Slurm's patterns).
    public var outputFiles: OutputFiles?

    public init(name: String?, user: String, command: String, workdir: String, environment: [String: String],
                request: ResourceRequest, killGraceSeconds: Double? = nil, timeLimit: Double? = nil,
                interactive: Bool? = nil, tty: TerminalSize? = nil) {
        self.timeLimit = timeLimit
        self.interactive = interactive
        self.tty = tty
        self.name = name
        self.user = user
        self.command = command
        self.workdir = workdir
        self.environment = environment
        self.request = request
        self.killGraceSeconds = killGraceSeconds
    }
}

/// `POST /v1/jobs`: one or many jobs, accepted together in one transaction or not at all.
/// Many jobs that differ only in their command travel compactly: `jobs` holds one template and `commands`
/// one command per job (the template's own command is then ignored).
public struct SubmitRequest: Codable, Sendable {
    public var jobs: [JobSpec]
    public var commands: [String]?
    public init(jobs: [JobSpec], commands: [String]? = nil) {
        self.jobs = jobs
        self.commands = commands
    }

    /// The jobs it asks for, or why it is malformed.
    public func expanded() throws(RequestShapeError) -> [JobSpec] {
        guard let commands else { return jobs }
        guard jobs.count == 1, let template = jobs.first else {
            throw RequestShapeError("with \"commands\", \"jobs\" must hold exactly one job: the template")
        }
        return commands.map { command in
            var spec = template
            spec.command = command
            return spec
        }
    }
}

/// A request whose parts do not fit together.
public struct RequestShapeError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct SubmitResponse: Codable, Sendable {
    public var ids: [JobID]
    public init(ids: [JobID]) { self.ids = ids }

    /// The answer as JSON, byte for byte what the API's encoder writes, made without one (a JSONEncoder for every
    /// submission was 1.7 % of a master's CPU under API submissions). An id is upper-case hex digits, "_" and decimal
    /// digits (JobID): nothing in it needs escaping.
    public var json: [UInt8] {
        var out = Array("{\"ids\":[".utf8)
        out.reserveCapacity(out.count + ids.count * 11 + 2)
        for (i, id) in ids.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: id.rawValue.utf8)
            out.append(UInt8(ascii: "\""))
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }
}

/// `POST /v1/jobs/cancel`.
public struct CancelRequest: Codable, Sendable {
    public var ids: [String]
    public init(ids: [String]) { self.ids = ids }
}

public struct CancelResponse: Codable, Sendable {
    public struct Result: Codable, Sendable {
        public enum Outcome: String, Codable, Sendable {
            /// It was pending and is now CANCELLED.
            case cancelled
            /// It runs; its processes are being terminated.
            case cancelling
            /// It had already ended; `state` says how.
            case alreadyFinished
            case unknown
            /// It belongs to someone else (only its owner or an admin may cancel it).
            case denied
        }
        public var id: String
        public var outcome: Outcome
        public var state: JobState?
        public init(id: String, outcome: Outcome, state: JobState?) {
            self.id = id
            self.outcome = outcome
            self.state = state
        }
    }
    public var results: [Result]
    public init(results: [Result]) { self.results = results }
}

/// `POST /v1/admin/users` (admins only).
public struct AddUserRequest: Codable, Sendable {
    public var name: String
    public var admin: Bool?
    public init(name: String, admin: Bool?) {
        self.name = name
        self.admin = admin
    }
}

public struct AddUserResponse: Codable, Sendable {
    public var name: String
    public var token: String?
    public var admin: Bool
    public init(name: String, token: String?, admin: Bool) {
        self.name = name
        self.token = token
        self.admin = admin
    }
}

/// `--array 0-99:2%8`: the task indices, and how many may run at once.
public struct ArrayRequest: Codable, Sendable {
    public var tasks: TaskIndices
    public var maxRunning: Int?
    public init(tasks: TaskIndices, maxRunning: Int? = nil) {
        self.tasks = tasks
        self.maxRunning = maxRunning
    }
}
