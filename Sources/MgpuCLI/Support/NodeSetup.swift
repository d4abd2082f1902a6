import Foundation
import Logging
import MgpuAgent
import MgpuMaster
import MgpuCore

/// Agent options shared by `mgpu node` and `mgpu up`.
enum NodeSetup {
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, 255)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(name.split(separator: ".").first ?? "node")
    }

    /// GPUs to offer: simulated ones or what nvidia-smi finds (none when it is absent), and inside a Slurm
    /// allocation only those Slurm gave.
    static func discoverGPUs(simulate: Int?, model: SimulatedModel = SimulatedModel(), nvidiaSMI: String?, nodeId: String,
                             logger: Logger) -> [GPU] {
        let found = discoverAll(simulate: simulate, model: model, nvidiaSMI: nvidiaSMI, nodeId: nodeId, logger: logger)
        guard let slurm = SlurmAllocation.restrict(found, environment: processEnvironment) else { return found }
        let text = slurm.map { "\($0.index) = Slurm device \($0.deviceId ?? "?"), physical \($0.physicalIndex.map(String.init) ?? "?")" }
        logger.info("inside Slurm job \(processEnvironment["SLURM_JOB_ID"] ?? "?"): offering only its \(slurm.count) GPU(s): \(text.joined(separator: "; "))",
                    metadata: ["node": "\(nodeId)"])
        return slurm
    }

    /// What simulated GPUs call themselves (`--simulate-gpu-model`, `--simulate-gpu-memory`).
    struct SimulatedModel {
        var name = "Simulated GPU"
        var memoryMB = 24576
    }

    static func discoverAll(simulate: Int?, model: SimulatedModel, nvidiaSMI: String?, nodeId: String, logger: Logger) -> [GPU] {
        if let simulate {
            logger.info("simulated mode: offering \(simulate) simulated GPU(s) (\(model.name), \(model.memoryMB) MiB); jobs see CUDA_VISIBLE_DEVICES but no real device",
                        metadata: ["node": "\(nodeId)"])
            return GPUDiscovery.simulated(simulate, node: nodeId, model: model.name, memoryMB: model.memoryMB)
        }
        switch NvidiaSMI.discover(path: nvidiaSMI) {
        case .found(let parsed):
            for line in parsed.rejected {
                logger.warning("ignored a line of nvidia-smi output: \(line)", metadata: ["node": "\(nodeId)"])
            }
            return parsed.gpus
        case .notInstalled:
            logger.info("nvidia-smi not found: offering 0 GPUs (CPU jobs only); use --simulate-gpus N to try mgpu without GPUs",
                        metadata: ["node": "\(nodeId)"])
            return []
        case .failed(let message):
            logger.warning("\(message): offering 0 GPUs", metadata: ["node": "\(nodeId)"])
            return []
        }
    }

    static func agentStateDir(base: String?, nodeId: String) -> String {
        base ?? MasterConfig.defaultStateDir + "/node-\(nodeId)"
    }
}

