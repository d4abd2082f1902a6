/// "Run this after that": a job that waits for other jobs (`--dependency`, as Slurm writes it:
/// `afterok:ID[:ID...]`, `afterany:...`, `afternotok:...`, `after:...`, several joined by commas, all must hold).
public struct Dependency: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// The jobs have started (or ended without starting).
        case after
        /// The jobs have ended, however.
        case afterany
        /// The jobs have completed successfully.
        case afterok
        /// The jobs have ended, not successfully.
        case afternotok
    }

    public var kind: Kind
    public var jobs: [JobID]

    public init(kind: Kind, jobs: [JobID]) {
        self.kind = kind
        self.jobs = jobs
    }

    /// Slurm's form, or why it is not one.
    public static func parse(_ text: String) -> Result<[Dependency], RequestError> {
        var result: [Dependency] = []
        for clause in text.split(separator: ",", omittingEmptySubsequences: false) {
            let fields = clause.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 2, let kind = Kind(rawValue: fields[0].lowercased()) else {
                return .failure(RequestError("--dependency takes KIND:JOBID[:JOBID...] with KIND one of after, afterany, afterok, afternotok (several joined by commas); got \(String(clause).debugDescription)"))
            }
            var ids: [JobID] = []
            for field in fields.dropFirst() {
                guard let id = JobID(field) else {
                    return .failure(RequestError("--dependency: \(field.debugDescription) is not a job id (8 hex digits, or ID_N for an array task)"))
                }
                ids.append(id)
            }
            result.append(Dependency(kind: kind, jobs: ids))
        }
        return .success(result)
    }

    public var text: String { ([kind.rawValue] + jobs.map(\.rawValue)).joined(separator: ":") }

    /// Where a job's dependencies stand.
    public enum Standing: Sendable, Equatable {
        case satisfied
        /// Not yet; the reason in words.
        case waiting(String)
        /// Never: what ended so that it cannot be.
        case never(String)
    }

    /// What `dependencies` say now, given the state of each job they name (nil: no such job).
    public static func standing(_ dependencies: [Dependency], state: (JobID) -> JobState?) -> Standing {
        var waiting: [String] = []
        for dependency in dependencies {
            for id in dependency.jobs {
                guard let s = state(id) else { return .never("job \(id) is unknown") }
                switch dependency.kind {
                case .after:
                    if s == .pending { waiting.append("job \(id) to start") }
                case .afterany:
                    if !s.isTerminal { waiting.append("job \(id) to end") }
                case .afterok:
                    if s.isTerminal && s != .completed { return .never("job \(id) ended \(s.rawValue)") }
                    if !s.isTerminal { waiting.append("job \(id) to complete successfully") }
                case .afternotok:
                    if s == .completed { return .never("job \(id) completed successfully") }
                    if !s.isTerminal { waiting.append("job \(id) to fail") }
                }
            }
        }
        return waiting.isEmpty ? .satisfied : .waiting("waiting for " + waiting.joined(separator: ", "))
    }
}
