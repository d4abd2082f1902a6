extension Job {
    /// The work item for this job's part `rank`: what its node runs, with the whole environment the job sees, assembled
    /// here and nowhere else. The submitter's environment, then:
    /// - `CUDA_VISIBLE_DEVICES` (the part's GPUs, in the node's own device numbering), `CUDA_DEVICE_ORDER=PCI_BUS_ID`,
    ///   `MGPU_GPUS` (the same list);
    /// - `MGPU_JOB_ID`, `MGPU_JOB_NAME`, `MGPU_NODE_ID`, `MGPU_NODE_RANK`, `MGPU_NNODES`, `MGPU_NODELIST`;
    /// - for a task of an array job, `MGPU_ARRAY_JOB_ID`, `MGPU_ARRAY_TASK_ID`, `MGPU_ARRAY_TASK_COUNT`,
    ///   `MGPU_ARRAY_TASK_MIN`, `MGPU_ARRAY_TASK_MAX` (Slurm's SLURM_ARRAY_* under mgpu's names);
    /// - `PYTHONUNBUFFERED=1` for rank 0 of an interactive job on pipes (output shows as it is written);
    /// - for a distributed job, what torchrun and torch.distributed read: `MASTER_ADDR` (rank 0's node address),
    ///   `MASTER_PORT`, `NNODES`, `NODE_RANK`, `NPROC_PER_NODE`, `WORLD_SIZE`.
    public func workItem(rank: Int, nodes: [String: Node]) -> WorkItem {
        let part = parts[rank]
        let node = nodes[part.nodeId]
        let interactiveRank0 = interactive == true && rank == 0
        var env = environment
        let devices = part.gpus.map { index in node?.gpus.first { $0.index == index }?.deviceId ?? String(index) }
        env["CUDA_VISIBLE_DEVICES"] = devices.joined(separator: ",")
        env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
        env["MGPU_GPUS"] = env["CUDA_VISIBLE_DEVICES"]
        env["MGPU_JOB_ID"] = id.rawValue
        env["MGPU_JOB_NAME"] = name
        env["MGPU_NODE_ID"] = part.nodeId
        env["MGPU_NODE_RANK"] = String(rank)
        env["MGPU_NNODES"] = String(parts.count)
        env["MGPU_NODELIST"] = parts.map(\.nodeId).joined(separator: ",")
        if let parent = id.arrayParent, let index = id.arrayIndex, let info = arrayTask {
            env["MGPU_ARRAY_JOB_ID"] = parent.rawValue
            env["MGPU_ARRAY_TASK_ID"] = String(index)
            env["MGPU_ARRAY_TASK_COUNT"] = String(info.count)
            env["MGPU_ARRAY_TASK_MIN"] = String(info.min)
            env["MGPU_ARRAY_TASK_MAX"] = String(info.max)
        }
        if interactiveRank0 && tty == nil { env["PYTHONUNBUFFERED"] = "1" }
        if request.distributed, let first = parts.first {
            env["MASTER_ADDR"] = nodes[first.nodeId]?.address ?? first.nodeId
            env["MASTER_PORT"] = String(rendezvousPort ?? 29500)
            env["NNODES"] = String(parts.count)
            env["NODE_RANK"] = String(rank)
            env["NPROC_PER_NODE"] = String(max(1, part.gpus.count))
            env["WORLD_SIZE"] = String(parts.reduce(0) { $0 + max(1, $1.gpus.count) })
        }
        let command = outputFiles?.wrap(self.command, job: id, user: user, name: name, node: part.nodeId, rank: rank) ?? self.command
        var item = WorkItem(jobId: id, rank: rank, nodeCount: parts.count, gpus: part.gpus, command: command, workdir: workdir,
                            environment: env, killGraceSeconds: killGraceSeconds, user: user, name: name, timeLimit: timeLimit,
                            stdin: interactiveRank0 ? true : nil, tty: rank == 0 ? tty : nil)
        item.attempt = requeues
        return item
    }
}
