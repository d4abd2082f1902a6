import Foundation
public import MgpuClient
import MgpuCore

public struct AgentConfig: Sendable {
    public var nodeId: String
    public var masterHost: String
    public var masterPort: Int
    public var stateDir: String
    public var gpus: [GPU]
    public var cpuSlots: Int
    public var advertiseAddress: String?
    /// Longest wait between reconnection attempts.
    public var maxBackoff: Double
    /// At SIGTERM, stop the jobs and report them instead of leaving them running (inside Slurm).
    public var drainOnShutdown: Bool = false
    /// Seconds between telemetry samples.
    public var reportInterval: Double = 5
    /// GPUs in use outside mgpu get no new jobs (`--foreign-gpu-policy avoid`), or are ignored.
    public var avoidForeignGPUs: Bool = true
    /// `--health-check PROGRAM` and `--health-interval S`.
    public var healthCheck: String?
    public var healthInterval: Double = 60
    /// nvidia-smi to sample (nil: the one in PATH).
    public var nvidiaSMI: String?
    /// The cluster secret, with which a new node enrols.
    public var token: String?
    /// Where the node credential the master gives at enrolment is kept.
    public var credentialPath: String { stateDir + "/node.credential" }
    /// HTTPS to the master when set.
    public var tls: ClientTLS?

    public init(nodeId: String, masterHost: String, masterPort: Int, stateDir: String, gpus: [GPU], cpuSlots: Int,
                advertiseAddress: String? = nil, maxBackoff: Double = 10) {
        self.nodeId = nodeId
        self.masterHost = masterHost
        self.masterPort = masterPort
        self.stateDir = stateDir
        self.gpus = gpus
        self.cpuSlots = cpuSlots
        self.advertiseAddress = advertiseAddress
        self.maxBackoff = maxBackoff
    }
}
