/// The task indices of an array job (`--array 0-99:2%8`, Slurm's form), kept as ranges: a 100,000-task array is a
/// few numbers, not 100,000 records.
public struct TaskIndices: Codable, Sendable, Hashable {
    /// Disjoint, ascending runs `first, first+step, ... <= last`.
    public struct Run: Codable, Sendable, Hashable {
        public var first: Int
        public var last: Int
        public var step: Int
        public init(first: Int, last: Int, step: Int = 1) {
            self.first = first
            self.last = last
            self.step = step
        }
        var count: Int { first > last ? 0 : (last - first) / step + 1 }
        var lastIndex: Int { first + (count - 1) * step }
        func contains(_ i: Int) -> Bool { i >= first && i <= last && (i - first) % step == 0 }
    }

    public private(set) var runs: [Run]

    public init(_ runs: [Run]) {
        self.runs = runs.filter { $0.count > 0 }
    }

    public init(from decoder: any Decoder) throws {
        let runs = try decoder.singleValueContainer().decode([Run].self)
        let range = 0...JobID.maxArrayIndex
        guard runs.allSatisfy({ range.contains($0.step) && $0.step >= 1 && range.contains($0.first) && range.contains($0.last) }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "task indices must be 0-\(JobID.maxArrayIndex) with steps of 1 or more"))
        }
        self.init(runs)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(runs)
    }

    public var count: Int { runs.reduce(0) { $0 + $1.count } }
    public var isEmpty: Bool { runs.isEmpty }
    public var min: Int? { runs.map(\.first).min() }
    public var max: Int? { runs.map(\.lastIndex).max() }
    public func contains(_ i: Int) -> Bool { runs.contains { $0.contains(i) } }

    /// The first `n` indices, in order.
    public func prefix(_ n: Int) -> [Int] {
        var result: [Int] = []
        for run in runs.sorted(by: { $0.first < $1.first }) {
            var i = run.first
            while i <= run.last && result.count < n {
                result.append(i)
                i += run.step
            }
            if result.count >= n { break }
        }
        return result
    }

    /// Without index `i`.
    public mutating func remove(_ i: Int) {
        guard let at = runs.firstIndex(where: { $0.contains(i) }) else { return }
        let run = runs[at]
        var pieces: [Run] = []
        if i > run.first { pieces.append(Run(first: run.first, last: i - run.step, step: run.step)) }
        if i < run.lastIndex { pieces.append(Run(first: i + run.step, last: run.lastIndex, step: run.step)) }
        runs.replaceSubrange(at...at, with: pieces.filter { $0.count > 0 })
    }

    /// Slurm's form: "0-99", "0-98:2", "1,3,5-7".
    public var text: String {
        runs.map { run in
            if run.count == 1 { return "\(run.first)" }
            return "\(run.first)-\(run.lastIndex)" + (run.step == 1 ? "" : ":\(run.step)")
        }.joined(separator: ",")
    }

    /// At most this many tasks in one array job.
    public static let maxTasks = 100_000

    /// Why these indices cannot make an array (too many, a task twice, ranges out of order), or nil.
    public var validationError: RequestError? {
        if isEmpty || count > Self.maxTasks { return RequestError("--array makes 1 to \(Self.maxTasks) tasks") }
        if runs.count > 10_000 { return RequestError("--array takes at most 10000 ranges") }
        var seen = Set<Int>()
        var last = -1
        for run in runs {
            if run.first < last { return RequestError("--array's ranges must be in ascending order") }
            last = run.first
            var i = run.first
            while i <= run.last {
                if !seen.insert(i).inserted { return RequestError("--array lists task \(i) twice") }
                i += run.step
            }
        }
        return nil
    }

    /// `--array`'s value: indices, and the `%MAX` of tasks running at once (nil: no limit); or why it is not one.
    public static func parse(_ text: String) -> Result<(TaskIndices, Int?), RequestError> {
        let usage = "--array takes indices as Slurm writes them: 0-99, 0-99:2 (a step), 1,3,5-7, and %N for at most N running at once"
        var spec = Substring(text)
        var limit: Int?
        if let percent = spec.firstIndex(of: "%") {
            guard let n = Int(spec[spec.index(after: percent)...]), n >= 1 else {
                return .failure(RequestError("\(usage); got \(text.debugDescription)"))
            }
            limit = n
            spec = spec[..<percent]
        }
        var runs: [Run] = []
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let stepSplit = part.split(separator: ":", omittingEmptySubsequences: false)
            let bounds = stepSplit[0].split(separator: "-", omittingEmptySubsequences: false)
            guard stepSplit.count <= 2, bounds.count <= 2, let first = Int(bounds[0]), let last = Int(bounds.last!),
                  let step = stepSplit.count == 2 ? Int(stepSplit[1]) : 1, (1...JobID.maxArrayIndex).contains(step), first >= 0, first <= last,
                  bounds.count == 2 || stepSplit.count == 1 else {
                return .failure(RequestError("\(usage); got \(text.debugDescription)"))
            }
            guard last <= JobID.maxArrayIndex else {
                return .failure(RequestError("--array indices go up to \(JobID.maxArrayIndex); got \(last)"))
            }
            runs.append(Run(first: first, last: last, step: step))
        }
        var seen = Set<Int>()
        var total = 0
        for run in runs {
            total += run.count
            guard total <= maxTasks else { return .failure(RequestError("--array makes at most \(maxTasks) tasks; got more")) }
        }
        for run in runs {
            var i = run.first
            while i <= run.last {
                guard seen.insert(i).inserted else { return .failure(RequestError("--array lists task \(i) twice")) }
                i += run.step
            }
        }
        return .success((TaskIndices(runs.sorted { $0.first < $1.first }), limit))
    }
}

/// What an array job's record holds: the tasks not started yet (it is the "pending rest" of the array), and what every
/// task is told.
public struct JobArray: Codable, Sendable, Hashable {
    /// Tasks that have not started (nor been cancelled on their own).
    public var pending: TaskIndices
    /// All the array's tasks, their lowest and highest index.
    public var count: Int
    public var min: Int
    public var max: Int
    /// `%MAX`: at most this many tasks running at once.
    public var maxRunning: Int?

    public init(_ tasks: TaskIndices, maxRunning: Int?) {
        pending = tasks
        count = tasks.count
        min = tasks.min ?? 0
        max = tasks.max ?? 0
        self.maxRunning = maxRunning
    }

    /// "[10-99%8]": the pending rest, as `mgpu queue` shows it after the job id.
    public var pendingText: String { "[" + pending.text + (maxRunning.map { "%\($0)" } ?? "") + "]" }
}

/// What a task of an array job knows of its array (its index is in its id).
public struct ArrayTaskInfo: Codable, Sendable, Hashable {
    public var count: Int
    public var min: Int
    public var max: Int
    public var maxRunning: Int?
    public init(_ array: JobArray) {
        count = array.count
        min = array.min
        max = array.max
        maxRunning = array.maxRunning
    }
}
