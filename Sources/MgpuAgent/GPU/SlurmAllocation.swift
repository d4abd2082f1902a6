import MgpuCore

/// An agent started inside a Slurm allocation offers only the GPUs Slurm gave it.
public enum SlurmAllocation {
    /// The GPUs of the allocation: one per entry of `CUDA_VISIBLE_DEVICES` (as this process sees them),
    /// numbered 0..n-1 for mgpu, each carrying Slurm's device id (what the job gets in CUDA_VISIBLE_DEVICES)
    /// and the physical index (`SLURM_STEP_GPUS` / `SLURM_JOB_GPUS`). Nil outside Slurm or without GPUs.
    public static func restrict(_ discovered: [GPU], environment: [String: String]) -> [GPU]? {
        guard let job = environment["SLURM_JOB_ID"], !job.isEmpty,
              let visible = environment["CUDA_VISIBLE_DEVICES"], !visible.isEmpty else { return nil }
        let devices = visible.split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        let physical = (environment["SLURM_STEP_GPUS"] ?? environment["SLURM_JOB_GPUS"] ?? "")
            .split(separator: ",").map { Int($0.trimmingSpaces) }
        return devices.enumerated().map { i, device in
            let match = discovered.first { $0.uuid == device } ?? Int(device).flatMap { d in discovered.first { $0.index == d } }
            let phys = i < physical.count ? physical[i] : nil
            return GPU(index: i, uuid: match?.uuid ?? "slurm-\(job)-\(device)", name: match?.name ?? "GPU", memoryMB: match?.memoryMB ?? 0,
                       simulated: match?.simulated ?? false, physicalIndex: phys ?? match?.index, deviceId: device)
        }
    }
}
