/// `--output` / `--error` (Slurm's): the job's streams go to files on the node, named with Slurm's patterns, written by
/// the job's own shell (so as its owner); with `--keep-logs` the master keeps them too (`mgpu logs`).
public struct OutputFiles: Codable, Sendable, Hashable {
    public var output: String?
    public var error: String?
    public var keepLogs: Bool?

    public init(output: String? = nil, error: String? = nil, keepLogs: Bool? = nil) {
        self.output = output
        self.error = error
        self.keepLogs = keepLogs
    }

    /// Why these cannot be used (too long, a NUL or a line break), or nil.
    public var validationError: RequestError? {
        for (flag, path) in [("--output", output), ("--error", error)] {
            guard let path else { continue }
            if path.isEmpty || path.unicodeScalars.count > 1024 || path.unicodeScalars.contains(where: { $0 == "\0" || $0 == "\n" || $0 == "\r" }) {
                return RequestError("\(flag) takes a file name (at most 1024 characters, no line breaks)")
            }
        }
        return nil
    }

    /// A pattern with Slurm's fields filled in: %j the job id, %A the array's id, %a the task index, %u the user, %x
    /// the job's name ('/' made '_'), %N the node, %t the rank, %% a '%'. Others stay as written.
    public static func expand(_ pattern: String, job: JobID, user: String, name: String, node: String, rank: Int) -> String {
        var result = ""
        var iterator = pattern.makeIterator()
        while let c = iterator.next() {
            guard c == "%" else { result.append(c); continue }
            guard let f = iterator.next() else { result.append("%"); break }
            switch f {
            case "j": result += job.rawValue
            case "A": result += (job.arrayParent ?? job).rawValue
            case "a": result += job.arrayIndex.map(String.init) ?? "4294967294"  // Slurm's NO_VAL for a job that is no task
            case "u": result += user
            case "x": result += String(name.map { $0 == "/" ? "_" : $0 })
            case "N": result += node
            case "t": result += String(rank)
            case "%": result += "%"
            default: result += "%" + String(f)
            }
        }
        return result
    }

    /// The job's command with its streams sent to the files: `exec` redirections, or (keeping logs) `tee` from a FIFO
    /// per stream, waited for before the shell exits with the command's status.
    public func wrap(_ command: String, job: JobID, user: String, name: String, node: String, rank: Int) -> String {
        let out = output.map { Self.quoted(Self.expand($0, job: job, user: user, name: name, node: node, rank: rank)) }
        let err = error.map { Self.quoted(Self.expand($0, job: job, user: user, name: name, node: node, rank: rank)) }
        guard out != nil || err != nil else { return command }
        guard keepLogs == true else {
            var redirect = "exec"
            if let out { redirect += " >" + out }
            if let err { redirect += " 2>" + err } else if out != nil { redirect += " 2>&1" }
            return redirect + "\n" + command
        }
        // Both: each stream through `tee FILE` (its own stdout still goes to the master).
        var lines = ["mgpu_d=$(mktemp -d \"${TMPDIR:-/tmp}/mgpu-out.XXXXXX\") || exit 1"]
        var inner = "exec"
        if let out {
            lines.append("mkfifo \"$mgpu_d/o\" && { tee \(out) < \"$mgpu_d/o\" & mgpu_to=$!; }")
            inner += " >\"$mgpu_d/o\""
        }
        if let err {
            lines.append("mkfifo \"$mgpu_d/e\" && { tee \(err) < \"$mgpu_d/e\" >&2 & mgpu_te=$!; }")
            inner += " 2>\"$mgpu_d/e\""
        } else if out != nil {
            inner += " 2>&1"
        }
        lines.append("(")
        lines.append(inner)
        lines.append("rm -rf \"$mgpu_d\"")
        lines.append(command)
        lines.append(")")
        lines.append("mgpu_rc=$?")
        lines.append("wait ${mgpu_to:-} ${mgpu_te:-}")
        lines.append("exit $mgpu_rc")
        return lines.joined(separator: "\n")
    }

    static func quoted(_ word: String) -> String {
        "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}
