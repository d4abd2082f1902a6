public import MgpuCore

extension JobSpec {
    /// Checks of a submitted job that need no cluster state: what the supervisor passes to C (no NUL bytes), an
    /// absolute working directory, sane environment names, limits on sizes and times. Nil when the job is fine.
    /// (What needs the cluster, such as GPU counts and node names, is `Admission.check`.)
    public func validationError() -> RequestError? {
        if command.utf8.contains(0) { return RequestError("the command contains a NUL byte") }
        if let name, name.utf8.count > 1024 || name.utf8.contains(0) {
            return RequestError("the job name must be at most 1024 bytes, without NUL bytes")
        }
        if !workdir.hasPrefix("/") || workdir.utf8.count > 4096 || workdir.utf8.contains(0) {
            return RequestError("the working directory must be an absolute path (at most 4096 bytes), got \(workdir.prefix(80).debugDescription)")
        }
        for (key, value) in environment {
            if key.isEmpty || key.utf8.contains(0) || key.utf8.contains(UInt8(ascii: "=")) {
                return RequestError("environment variable names must be non-empty, without '=' or NUL bytes, got \(key.prefix(80).debugDescription)")
            }
            if value.utf8.contains(0) { return RequestError("environment variable \(key) contains a NUL byte") }
        }
        if let grace = killGraceSeconds, !(0...86_400).contains(grace) {
            return RequestError("the kill grace period must be between 0 and 86400 s")
        }
        if let limit = timeLimit, !(1...(365 * 86_400)).contains(limit) {
            return RequestError("the time limit must be between 1 s and 365 days")
        }
        if let tty, !(1...1000).contains(tty.rows) || !(1...1000).contains(tty.columns) {
            return RequestError("terminal size must be 1-1000 rows and columns")
        }
        if request.excludedNodes != nil { return RequestError("excludedNodes is set by the master only") }
        if let nice, !(-100_000...100_000).contains(nice) { return RequestError("--nice must be between -100000 and 100000") }
        if let dependencies, dependencies.isEmpty || dependencies.contains(where: \.jobs.isEmpty) || dependencies.reduce(0, { $0 + $1.jobs.count }) > 1000 {
            return RequestError("--dependency names 1 to 1000 jobs")
        }
        if request.selectsGPUs {
            if let type = request.gpuType, type.isEmpty || type.utf8.count > 100 || type.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                return RequestError("--gpu-type takes part of a GPU model's name (1-100 printable characters), e.g. a100")
            }
            if let mb = request.gpuMemoryMB, !(1...1_000_000_000).contains(mb) { return RequestError("--gpu-mem must be 1 MiB or more") }
            if request.pinned != nil || request.gpuIds != nil {
                return RequestError("--gpu-type and --gpu-mem choose GPUs by kind; pinned GPUs and --gpu-ids name them: give one or the other")
            }
            if request.gpusPerNode == 0 { return RequestError("--gpu-type and --gpu-mem need --gpus 1 or more") }
        }
        if let array {
            if let error = array.tasks.validationError { return error }
            if let max = array.maxRunning, max < 1 { return RequestError("--array's %N must be 1 or more") }
            if interactive == true { return RequestError("--array is for batch jobs (mgpu submit), not interactive ones") }
        }
        if requeue == true {
            if request.pinned != nil {
                return RequestError("--requeue needs GPUs the scheduler chooses: pinned GPUs cannot move to another node")
            }
            if interactive == true { return RequestError("--requeue is for batch jobs, not interactive ones") }
        }
        if let files = outputFiles {
            if let error = files.validationError { return error }
            if interactive == true { return RequestError("--output and --error are for batch jobs: an interactive job's output comes to you") }
        }
        if let notify, !JobEvent.validURL(notify) {
            return RequestError("--notify takes an http:// or https:// URL with a host (at most 2048 characters, no spaces)")
        }
        if preemptible == true && interactive == true {
            return RequestError("--preemptible is for batch jobs (mgpu submit): an interactive one would be stopped under you")
        }
        return nil
    }
}

extension JobSpec {
    /// Variables that hold mgpu's own credentials, never forwarded to a node.
    public static let secretVariables: Set<String> = ["MGPU_TOKEN"]

    /// Drops mgpu's own secrets from the job's environment: `MGPU_TOKEN`, and any variable whose value holds one of
    /// `secrets` (the submitter's token, however it was passed). The client does it before sending; the master again.
    public mutating func removeSecrets(_ secrets: [String]) {
        let secrets = secrets.filter { $0.utf8.count >= 16 }
        environment = environment.filter { key, value in
            !Self.secretVariables.contains(key) && !secrets.contains { value.contains($0) }
        }
    }
}
