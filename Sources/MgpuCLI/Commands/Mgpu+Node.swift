import ArgumentParser
import Foundation
import Logging
import MgpuAgent

struct AgentOptions: ParsableArguments {
    @Option(help: "This node's id (default: the host name).")
    var nodeId: String?

    @Option(help: "Offer N simulated GPUs instead of real ones (for machines without GPUs).")
    var simulateGpus: Int?

    @Option(help: ArgumentHelp("The model name simulated GPUs report (for trying --gpu-type), e.g. \"NVIDIA A100-SXM4-80GB\".", valueName: "name"))
    var simulateGpuModel: String?

    @Option(help: ArgumentHelp("The memory simulated GPUs report, in MiB (for trying --gpu-mem; default 24576).", valueName: "MiB"))
    var simulateGpuMemory: Int?

    @Option(help: "How many CPU-only (--gpus 0) jobs may run at once (default: the core count).")
    var cpuSlots: Int?

    @Option(help: "Address other nodes reach this one at (default: the address the master sees).")
    var advertiseAddr: String?

    @Option(help: ArgumentHelp("Path of nvidia-smi to use.", visibility: .hidden))
    var nvidiaSmi: String?

    @Option(help: ArgumentHelp("Seconds between telemetry samples (CPU, RAM, GPUs) sent with the heartbeat.", valueName: "S"))
    var reportInterval: Double = 5

    @Option(help: ArgumentHelp("avoid: a GPU a process outside mgpu holds memory on gets no new job until it is free again; ignore: schedule it anyway.", valueName: "avoid|ignore"))
    var foreignGpuPolicy: String = "avoid"

    @Option(help: ArgumentHelp("File holding the cluster secret (the master's STATE_DIR/cluster.secret); default: $MGPU_TOKEN.", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("A site's own health check (like Slurm's HealthCheckProgram), run as this agent's user every --health-interval: a non-zero exit drains the node, its first line of output saying why; a zero exit lifts that drain.", valueName: "program"))
    var healthCheck: String?

    @Option(help: ArgumentHelp("Seconds between health checks: --health-check and the GPUs' health readings (nvidia-smi -q, XID errors in the kernel log).", valueName: "S"))
    var healthInterval: Double = 60

    @OptionGroup var tls: TLSClientOptions

    @Flag(inversion: .prefixedNo, help: "At SIGTERM, stop the jobs, report them NODE_FAIL and deregister (default: on inside a Slurm allocation, else off: jobs keep running).")
    var drainOnSigterm: Bool?

    func validate() throws {
        if let simulateGpus, !(0...1024).contains(simulateGpus) { throw ValidationError("--simulate-gpus must be 0-1024") }
        if (simulateGpuModel != nil || simulateGpuMemory != nil) && simulateGpus == nil {
            throw ValidationError("--simulate-gpu-model and --simulate-gpu-memory describe simulated GPUs: give --simulate-gpus N too")
        }
        if let simulateGpuModel, simulateGpuModel.isEmpty || simulateGpuModel.count > 100 || simulateGpuModel.contains(where: \.isNewline) {
            throw ValidationError("--simulate-gpu-model must be 1-100 characters on one line")
        }
        if let simulateGpuMemory, !(1...10_000_000).contains(simulateGpuMemory) {
            throw ValidationError("--simulate-gpu-memory is in MiB: 1-10000000, got \(simulateGpuMemory)")
        }
        if let cpuSlots, !(0...100_000).contains(cpuSlots) { throw ValidationError("--cpu-slots must be 0-100000") }
        if !(0.1...3600).contains(reportInterval) { throw ValidationError("--report-interval must be 0.1-3600 s") }
        if !(0.1...86_400).contains(healthInterval) { throw ValidationError("--health-interval must be 0.1-86400 s, got \(healthInterval)") }
        if let healthCheck, !FileManager.default.isExecutableFile(atPath: healthCheck) {
            throw ValidationError("--health-check \(healthCheck) is not an executable file (give the program's full path)")
        }
        if foreignGpuPolicy != "avoid" && foreignGpuPolicy != "ignore" {
            throw ValidationError("--foreign-gpu-policy is avoid or ignore, got \(foreignGpuPolicy.debugDescription)")
        }
        if let nodeId, nodeId.isEmpty || nodeId.count > 64 || nodeId.contains("/") || nodeId == "." || nodeId == ".." {
            throw ValidationError("--node-id must be 1-64 characters without '/'")
        }
    }

    var resolvedNodeId: String { nodeId ?? NodeSetup.hostname() }

    func config(masterHost: String, masterPort: Int, stateDir: String?, logger: Logger) throws -> AgentConfig {
        let id = resolvedNodeId
        var model = NodeSetup.SimulatedModel()
        if let simulateGpuModel { model.name = simulateGpuModel }
        if let simulateGpuMemory { model.memoryMB = simulateGpuMemory }
        let gpus = NodeSetup.discoverGPUs(simulate: simulateGpus, model: model, nvidiaSMI: nvidiaSmi, nodeId: id, logger: logger)
        var config = AgentConfig(nodeId: id, masterHost: masterHost, masterPort: masterPort,
                                 stateDir: NodeSetup.agentStateDir(base: stateDir, nodeId: id), gpus: gpus,
                                 cpuSlots: cpuSlots ?? ProcessInfo.processInfo.activeProcessorCount,
                                 advertiseAddress: advertiseAddr)
        config.drainOnShutdown = drainOnSigterm ?? (processEnvironment["SLURM_JOB_ID"] != nil)
        config.reportInterval = reportInterval
        config.healthCheck = healthCheck
        config.healthInterval = healthInterval
        config.avoidForeignGPUs = foreignGpuPolicy == "avoid"
        config.nvidiaSMI = nvidiaSmi
        config.tls = try tls.make()
        if let tokenFile {
            config.token = (try? String(contentsOfFile: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if config.token == nil { logger.warning("cannot read --token-file \(tokenFile)", metadata: ["node": "\(id)"]) }
        } else {
            config.token = processEnvironment["MGPU_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        }
        return config
    }
}

extension Mgpu {
    struct Node: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "node",
            abstract: "Run a node agent: offer this machine's GPUs to a master and run its jobs.",
            discussion: "The agent only dials out to the master; jobs keep running if the master or the agent goes away.")

        @OptionGroup var agent: AgentOptions

        @Option(help: "The master's host (default: $MGPU_MASTER_HOST, else localhost).")
        var masterHost: String?

        @Option(help: "The master's port (default: $MGPU_MASTER_PORT, else 8080).")
        var masterPort: Int?

        @Option(help: "Where this agent keeps its jobs' files (default: <state>/node-<id>).")
        var stateDir: String?

        @OptionGroup var verbose: VerboseOption
        @OptionGroup var configFile: ConfigOption

        func run() async throws {
            OneLineLogHandler.bootstrap(verbose: verbose.verbose)
            let logger = Logger(label: "mgpu.node")
            let env = processEnvironment
            let host = masterHost ?? env["MGPU_MASTER_HOST"].flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
            let port = masterPort ?? env["MGPU_MASTER_PORT"].flatMap(Int.init) ?? 8080
            let config = try agent.config(masterHost: host, masterPort: port, stateDir: stateDir, logger: logger)
            let service: AgentService
            do { service = try AgentService(config: config, logger: logger) } catch {
                throw CLIError("cannot start the agent: \(error)")
            }
            try await runServices([service], logger: logger)
        }
    }
}
