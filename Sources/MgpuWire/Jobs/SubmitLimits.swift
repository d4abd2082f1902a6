public import MgpuCore

/// How much one submission may ask the master to hold. Checked once per request, before a template is expanded into
/// its jobs, so that a small request built to expand (a large environment times many commands) is refused at once.
/// Each limit is a `mgpu master` flag.
public struct SubmitLimits: Sendable, Equatable {
    /// A job's environment, names and values (`--max-environment-bytes`).
    public var environmentBytes = 128 << 10
    /// A job's command (`--max-command-bytes`): it is one argument of `/bin/sh -c`, and Linux takes at most 128 KiB,
    /// its NUL byte included, in one argument.
    public var commandBytes = (128 << 10) - 1
    /// A job's name.
    public var nameBytes = 256
    /// All the jobs of one request together, as expanded: environment, command, name and folder of each
    /// (`--max-request-bytes`).
    public var expandedBytes = 256 << 20
    /// Jobs in one request.
    public var jobs = 100_000

    public init() {}

    /// What each expanded job holds besides its command.
    static func fixedBytes(_ spec: JobSpec) -> Int {
        spec.environment.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 }
            + (spec.name?.utf8.count ?? 0) + spec.workdir.utf8.count + 256
    }
}

extension SubmitRequest {
    /// Checks the request's shape, each job as written, and the limits, without expanding it. Returns how many jobs it
    /// holds. (What needs the cluster, such as GPU counts and node names, is `Admission.check`.)
    public func check(_ limits: SubmitLimits) throws(RequestError) -> Int {
        if let commands {
            guard jobs.count == 1 else { throw RequestError("with \"commands\", \"jobs\" must hold exactly one job: the template") }
            guard !commands.isEmpty else { throw RequestError("no job to submit") }
        }
        guard !jobs.isEmpty else { throw RequestError("no job to submit") }
        let count = commands?.count ?? jobs.count
        guard count <= limits.jobs else {
            throw RequestError("\(count) jobs in one request; the master takes at most \(limits.jobs) at once: split the file")
        }
        var expanded = 0
        for (i, spec) in jobs.enumerated() {
            let which = jobs.count == 1 ? "" : "job \(i + 1): "
            if let error = spec.validationError() { throw RequestError(which + error.message) }
            let environment = spec.environment.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 }
            if environment > limits.environmentBytes {
                throw RequestError(which + "the job's environment is \(environment) bytes, over the master's limit of \(limits.environmentBytes) (--max-environment-bytes): unset what the job does not need")
            }
            if let name = spec.name, name.utf8.count > limits.nameBytes {
                throw RequestError(which + "the job name is \(name.utf8.count) bytes; at most \(limits.nameBytes)")
            }
            if commands == nil { try Self.checkCommand(spec.command, limits, which) }
            expanded += SubmitLimits.fixedBytes(spec) * (commands == nil ? 1 : count)
        }
        for (i, command) in (commands ?? []).enumerated() {
            try Self.checkCommand(command, limits, "job \(i + 1): ")
            expanded += command.utf8.count
        }
        if expanded > limits.expandedBytes {
            throw RequestError("this request expands to \(expanded >> 20) MiB of jobs (\(count) jobs with their environment), over the master's limit of \(limits.expandedBytes >> 20) MiB (--max-request-bytes): submit fewer jobs at once or a smaller environment")
        }
        return count
    }

    static func checkCommand(_ command: String, _ limits: SubmitLimits, _ which: String) throws(RequestError) {
        if command.utf8.count > limits.commandBytes {
            throw RequestError(which + "the command is \(command.utf8.count) bytes, over the master's limit of \(limits.commandBytes) (--max-command-bytes): put it in a script")
        }
        if command.utf8.contains(0) { throw RequestError(which + "the command contains a NUL byte") }
        if command.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) { throw RequestError(which + "the command is empty") }
    }
}
