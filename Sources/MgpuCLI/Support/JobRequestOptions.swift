import ArgumentParser
import MgpuCore
import MgpuWire

/// What a job asks for: options shared by `mgpu submit` and `mgpu srun`.
struct JobRequestOptions: ParsableArguments {
    @Option(help: "GPUs on one node (default 1; 0: a CPU-only job). With --nodes N, GPUs in all, split evenly.")
    var gpus: Int?

    @Option(help: "GPUs on each node (with --nodes).")
    var gpusPerNode: Int?

    @Option(help: ArgumentHelp("Exact GPU indices on each node, e.g. 0,1 (on any node that has them free, or on --nodelist).", valueName: "list"))
    var gpuIds: String?

    @Option(help: ArgumentHelp("Only GPUs whose model name contains T, any case (a100, h100, 4090); `mgpu nodes -v` lists the models.", valueName: "T"))
    var gpuType: String?

    @Option(help: ArgumentHelp("Only GPUs with at least SIZE of memory: 40G, 24GB, 81920M (MiB when bare); 3 % under counts, as drivers keep some.", valueName: "SIZE"))
    var gpuMem: String?

    @Option(help: "How many distinct nodes (default 1, or the length of --nodelist).")
    var nodes: Int?

    @Option(help: ArgumentHelp("Only these nodes, comma-separated; ranks follow this order.", valueName: "list"))
    var nodelist: String?

    @Option(help: ArgumentHelp("Exact GPUs: \"NODE:GPU[,GPU...][;NODE:GPU...]\".", valueName: "list"))
    var nodeGpuIds: String?

    @Flag(help: "Set MASTER_ADDR, MASTER_PORT, NNODES, NODE_RANK, NPROC_PER_NODE and WORLD_SIZE for torchrun.")
    var distributed = false

    @Option(help: "A name for the job (default: the command's first word).")
    var name: String?

    @Option(help: "Seconds between SIGTERM and SIGKILL when the job is cancelled or reaches its time limit.")
    var killGrace: Double = 10

    @Option(name: [.customShort("t"), .long], help: ArgumentHelp("Time limit, as Slurm writes it: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS. Past it the job gets SIGTERM, then SIGKILL, and ends TIMEOUT.", valueName: "limit"))
    var time: String?

    @Flag(help: "If the job's node is lost, put the job back in the queue to run again on another node (as Slurm's --requeue), instead of ending it NODE_FAIL.")
    var requeue = false

    @Option(help: ArgumentHelp("Lower the job's priority by N/1000 (0-100000; only an admin may give a negative N to raise it).", valueName: "N"))
    var nice: Int?

    @Flag(help: "Run on GPUs nobody else needs now, past your limits; when a job that is not preemptible needs them, the job gets SIGTERM (then SIGKILL after --kill-grace) and goes back to the queue, to run again later.")
    var preemptible = false

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("Write the job's stdout (and stderr, without --error) to FILE on its node, as its owner; Slurm's patterns: %j job id, %A array id, %a task, %u user, %x name, %N node, %t rank. `mgpu logs` then has nothing unless --keep-logs.", valueName: "file"))
    var output: String?

    @Option(name: [.customShort("e"), .long], help: ArgumentHelp("Write the job's stderr to FILE on its node (the same patterns).", valueName: "file"))
    var error: String?

    @Flag(help: "With --output/--error: the master keeps the output too (mgpu logs).")
    var keepLogs = false

    var outputFiles: OutputFiles? {
        output == nil && error == nil ? nil : OutputFiles(output: output, error: error, keepLogs: keepLogs ? true : nil)
    }

    @Option(help: ArgumentHelp("When the job ends (or is marked idle), post a JSON event to this http(s) URL; it has a `text` line, so a Slack or Mattermost incoming webhook shows it.", valueName: "url"))
    var notify: String?

    @Option(help: ArgumentHelp("Start only after other jobs, as Slurm writes it: afterok:ID[:ID...] (they completed), afterany (they ended), afternotok (they failed), after (they started); several joined by commas. A dependency that can no longer hold cancels the job.", valueName: "deps"))
    var dependency: String?

    var dependencies: [Dependency]? { dependency.flatMap { try? Dependency.parse($0).get() } }

    var timeLimit: Double? { time.flatMap { TimeLimit.parse($0) } ?? nil }

    func validate() throws {
        if let time, TimeLimit.parse(time) == nil {
            throw ValidationError("--time takes MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS; got \(time.debugDescription)")
        }
        _ = try makeRequest()
        if killGrace < 0 || killGrace > 86_400 { throw ValidationError("--kill-grace must be 0-86400 s") }
        if let nice, !(-100_000...100_000).contains(nice) { throw ValidationError("--nice must be -100000 to 100000, got \(nice)") }
        if let dependency, case .failure(let error) = Dependency.parse(dependency) { throw ValidationError(error.message) }
        if let error = outputFiles?.validationError { throw ValidationError(error.message) }
        if keepLogs && outputFiles == nil { throw ValidationError("--keep-logs goes with --output or --error") }
        if let notify, !JobEvent.validURL(notify) {
            throw ValidationError("--notify takes an http:// or https:// URL with a host; got \(notify.debugDescription)")
        }
    }

    var request: ResourceRequest { (try? makeRequest()) ?? ResourceRequest() }

    func makeRequest() throws -> ResourceRequest {
        var request = try makeRequestByCount()
        guard gpuType != nil || gpuMem != nil else { return request }
        if nodeGpuIds != nil || gpuIds != nil {
            throw ValidationError("--gpu-type and --gpu-mem choose GPUs by kind; --gpu-ids and --node-gpu-ids name them: give one or the other")
        }
        if request.gpusPerNode == 0 { throw ValidationError("--gpu-type and --gpu-mem need --gpus 1 or more") }
        if let gpuType {
            let type = gpuType.trimmingCharacters(in: .whitespaces)
            if type.isEmpty || type.count > 100 { throw ValidationError("--gpu-type takes part of a GPU model's name, e.g. a100") }
            request.gpuType = type
        }
        if let gpuMem {
            guard let mb = GPUModel.parseMemory(gpuMem) else {
                throw ValidationError("--gpu-mem takes a size such as 40G, 24GB or 81920M; got \(gpuMem.debugDescription)")
            }
            request.gpuMemoryMB = mb
        }
        return request
    }

    func makeRequestByCount() throws -> ResourceRequest {
        if let nodeGpuIds {
            if gpus != nil || gpusPerNode != nil || gpuIds != nil || nodes != nil || nodelist != nil {
                throw ValidationError("--node-gpu-ids names every GPU: do not combine it with --gpus, --gpus-per-node, --gpu-ids, --nodes or --nodelist")
            }
            switch PinnedGPUs.parseList(nodeGpuIds) {
            case .failure(let error): throw ValidationError(error.message)
            case .success(let pinned): return ResourceRequest(gpusPerNode: 0, nodes: pinned.count, pinned: pinned, distributed: distributed)
            }
        }
        let list = try nodelist.map { text -> [String] in
            let names = text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if names.isEmpty { throw ValidationError("--nodelist is empty") }
            return names
        }
        let count = nodes ?? list?.count ?? 1
        guard (1...10_000).contains(count) else { throw ValidationError("--nodes must be 1-10000, got \(count)") }
        if let ids = gpuIds {
            if gpus != nil || gpusPerNode != nil { throw ValidationError("--gpu-ids names the GPUs: do not combine it with --gpus or --gpus-per-node") }
            let parsed = try ids.split(separator: ",", omittingEmptySubsequences: false).map { text -> Int in
                guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                    throw ValidationError("--gpu-ids takes GPU indices like 0,1; \"\(text)\" is not one")
                }
                return n
            }
            return ResourceRequest(nodes: count, nodelist: list, gpuIds: parsed, distributed: distributed)
        }
        var perNode = gpusPerNode ?? 1
        if let gpus {
            guard gpus >= 0 else { throw ValidationError("--gpus must be 0 or more, got \(gpus)") }
            if gpusPerNode != nil { throw ValidationError("give --gpus or --gpus-per-node, not both") }
            guard gpus % count == 0 else {
                throw ValidationError("--gpus \(gpus) cannot be split evenly over \(count) nodes; use --gpus-per-node")
            }
            perNode = gpus / count
        }
        guard (0...1024).contains(perNode) else { throw ValidationError("GPUs per node must be 0-1024, got \(perNode)") }
        return ResourceRequest(gpusPerNode: perNode, nodes: count, nodelist: list, distributed: distributed)
    }
}
