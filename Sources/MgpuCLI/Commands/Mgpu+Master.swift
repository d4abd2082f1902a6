import ArgumentParser
import Foundation
import Logging
import MgpuCore
import MgpuMaster
import MgpuWire

extension IdleRule.Action: ExpressibleByArgument {}

extension SharingPolicy.Order: ExpressibleByArgument {
    /// "default" names the default policy, fair-share.
    public init?(argument: String) { self.init(name: argument) }
}
import ServiceLifecycle

struct MasterOptions: ParsableArguments {
    @Option(help: "Address to listen on; 0.0.0.0 for a cluster.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8080

    @Option(help: "Where the state database and job output live (default: $XDG_STATE_HOME/mgpu or ~/.local/state/mgpu).")
    var stateDir: String?

    @Option(help: "Seconds without a heartbeat before a node is DOWN (its jobs keep their GPUs).")
    var nodeTimeout: Double = 30

    @Option(help: "Seconds without a heartbeat before a node's running jobs end NODE_FAIL.")
    var nodeLostAfter: Double = 600

    @Option(help: ArgumentHelp("Serve HTTPS (API, dashboard, agents) with this PEM certificate chain; needs --tls-key.", valueName: "pem"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The PEM private key of --tls-cert.", valueName: "pem"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("Largest environment one job may carry, in bytes.", valueName: "bytes"))
    var maxEnvironmentBytes = SubmitLimits().environmentBytes

    @Option(help: ArgumentHelp("Longest command of one job, in bytes.", valueName: "bytes"))
    var maxCommandBytes = SubmitLimits().commandBytes

    @Option(help: ArgumentHelp("Most one submission may expand to (each job's environment, command, name and folder), in bytes.", valueName: "bytes"))
    var maxRequestBytes = SubmitLimits().expandedBytes

    @Option(help: ArgumentHelp("Most pending jobs one user may have; past it, submissions are refused.", valueName: "n"))
    var maxPendingPerUser = 10_000

    @Option(help: ArgumentHelp("Most input one interactive job may be sent, in bytes.", valueName: "bytes"))
    var maxStdinBytes: Int64 = 64 << 20

    @Option(help: ArgumentHelp("Seconds before a connection that sends nothing while no request of it is answered is closed.", valueName: "s"))
    var idleTimeout: Double = 60

    @Option(help: ArgumentHelp("Connections served at once; past it, a new one closes the quietest connection not waiting for an answer.", valueName: "n"))
    var maxConnections = 4096

    @Option(help: ArgumentHelp("Seconds an ended job stays in memory (listings, the dashboard); after that it is in the store only.", valueName: "s"))
    var keepEnded: Double = 3600

    @Option(help: ArgumentHelp("Idle GPUs: a running job whose GPUs all stay below this utilisation (percent)...", valueName: "percent"))
    var idleThreshold = 1.0

    @Option(help: ArgumentHelp("...for this long is marked idle (mgpu queue, the dashboard, /metrics) and its owner notified; as Slurm writes times.", valueName: "time"))
    var idleAfter = "30:00"

    @Option(help: ArgumentHelp("warn: only mark and notify; cancel: also cancel a job idle for --idle-cancel-after.", valueName: "warn|cancel"))
    var idleAction: IdleRule.Action = .warn

    @Option(help: ArgumentHelp("With --idle-action cancel: how long a job may stay idle before it is cancelled.", valueName: "time"))
    var idleCancelAfter = "1:00:00"

    @Flag(help: "Idle rules apply to interactive jobs too (they are exempt by default).")
    var idleInteractive = false

    @Option(help: ArgumentHelp("Days an ended job stays in the store with its accounting (mgpu history, mgpu report); 0: forever.", valueName: "days"))
    var historyDays = 365

    @Option(help: ArgumentHelp("How pending jobs are served: fair-share (by priority: fair share, age and nice; with backfill) or fifo (submission order).", valueName: "fair-share|fifo"))
    var policy: SharingPolicy.Order = .fairShare

    @Option(help: ArgumentHelp("Time limit of jobs submitted without --time, as Slurm writes it; UNLIMITED: none (backfill then plans such jobs as never ending).", valueName: "limit"))
    var defaultTime = "7-00:00:00"

    @Option(help: ArgumentHelp("Fair share: a waiting job gains the whole fair-share range of priority per this long waiting, so that every job's turn comes.", valueName: "limit"))
    var ageScale = "1-12:00:00"

    @Option(help: ArgumentHelp("The longest --time a job may ask for (default: no cap).", valueName: "limit"))
    var maxTime: String?

    @Option(help: ArgumentHelp("Fair share: past usage loses half its weight every this long.", valueName: "limit"))
    var fairShareHalfLife = "7-00:00:00"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535, got \(port)") }
        guard nodeTimeout > 0 else { throw ValidationError("--node-timeout must be positive") }
        guard nodeLostAfter >= nodeTimeout else { throw ValidationError("--node-lost-after must be at least --node-timeout") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        for (flag, value) in [("--max-environment-bytes", maxEnvironmentBytes), ("--max-command-bytes", maxCommandBytes),
                              ("--max-request-bytes", maxRequestBytes), ("--max-pending-per-user", maxPendingPerUser),
                              ("--max-connections", maxConnections)] where value < 1 {
            throw ValidationError("\(flag) must be 1 or more, got \(value)")
        }
        guard maxStdinBytes >= 0 else { throw ValidationError("--max-stdin-bytes must be 0 or more") }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be positive") }
        guard keepEnded >= 0 else { throw ValidationError("--keep-ended must be 0 or more") }
        for (flag, value) in [("--idle-after", idleAfter), ("--idle-cancel-after", idleCancelAfter)] where (TimeLimit.parse(value) ?? nil) == nil {
            throw ValidationError("\(flag) takes MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS; got \(value.debugDescription)")
        }
        guard idleThreshold > 0 && idleThreshold <= 100 else { throw ValidationError("--idle-threshold must be more than 0 and at most 100 (percent), got \(idleThreshold)") }
        guard (0...36_500).contains(historyDays) else { throw ValidationError("--history-days must be 0 (forever) to 36500, got \(historyDays)") }
        for (flag, value) in [("--default-time", defaultTime), ("--max-time", maxTime ?? "1"), ("--fair-share-half-life", fairShareHalfLife),
                              ("--age-scale", ageScale)]
        where TimeLimit.parse(value) == nil {
            throw ValidationError("\(flag) takes MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS; got \(value.debugDescription)")
        }
        if let max = maxTime.flatMap({ TimeLimit.parse($0) ?? nil }), let def = TimeLimit.parse(defaultTime) ?? nil, def > max {
            throw ValidationError("--default-time \(defaultTime) is over --max-time \(maxTime!)")
        }
        for path in [tlsCert, tlsKey].compactMap({ $0 }) where access(path, R_OK) != 0 {
            throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
    }

    var config: MasterConfig {
        var config = MasterConfig(host: host, port: port, stateDir: stateDir ?? MasterConfig.defaultStateDir,
                                  nodeTimeout: nodeTimeout, nodeLostAfter: nodeLostAfter)
        config.tlsCertificate = tlsCert
        config.tlsKey = tlsKey
        config.submitLimits.environmentBytes = maxEnvironmentBytes
        config.submitLimits.commandBytes = maxCommandBytes
        config.submitLimits.expandedBytes = maxRequestBytes
        config.maxPendingPerUser = maxPendingPerUser
        config.maxStdinBytes = maxStdinBytes
        config.idleTimeout = idleTimeout
        config.maxConnections = maxConnections
        config.keepEndedSeconds = keepEnded
        config.historySeconds = historyDays == 0 ? nil : Double(historyDays) * 86_400
        config.idle.threshold = idleThreshold
        config.idle.after = (TimeLimit.parse(idleAfter) ?? nil) ?? config.idle.after
        config.idle.action = idleAction
        config.idle.cancelAfter = (TimeLimit.parse(idleCancelAfter) ?? nil) ?? config.idle.cancelAfter
        config.idle.interactive = idleInteractive
        config.policy.order = policy
        config.policy.defaultTime = TimeLimit.parse(defaultTime) ?? config.policy.defaultTime
        config.policy.ageScale = (TimeLimit.parse(ageScale) ?? nil) ?? config.policy.ageScale
        config.policy.maxTime = maxTime.flatMap { TimeLimit.parse($0) ?? nil }
        config.policy.halfLife = (TimeLimit.parse(fairShareHalfLife) ?? nil) ?? config.policy.halfLife
        return config
    }

    /// Opens the store and state, or fails with one line.
    func makeServer(logger: Logger) throws -> MasterServer {
        do {
            return try MasterServer(config: config, logger: logger)
        } catch {
            throw CLIError("cannot start the master: \(error)")
        }
    }
}

extension Mgpu {
    struct Master: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "master", abstract: "Run the master: queue, scheduler, store and HTTP API.")

        @OptionGroup var options: MasterOptions
        @OptionGroup var verbose: VerboseOption
        @OptionGroup var configFile: ConfigOption

        func run() async throws {
            OneLineLogHandler.bootstrap(verbose: verbose.verbose)
            let logger = Logger(label: "mgpu.master")
            let server = try options.makeServer(logger: logger)
            var services = server.services { port in
                say("mgpu master listening on \(server.scheme)://\(options.host):\(port)")
                say("state: \(server.databasePath) (job output in \(server.config.stateDir)/output)")
                say("agents need \(server.config.stateDir)/cluster.secret; your token: \(server.config.stateDir)/tokens/\(MasterServer.unixUser())")
                say("dashboard: \(server.scheme)://\(options.host == "0.0.0.0" ? "127.0.0.1" : options.host):\(port)/ (sign in with your token, or a link from `mgpu dashboard`)")
                SystemdNotify.send("READY=1\nSTATUS=listening on port \(port)")
            }
            if let path = configFile.path {
                services.append(PolicyReloadService(path: path, state: server.state, logger: logger, started: server.config.policy,
                                                    flagged: PolicyReloadService.flaggedKeys(Array(CommandLine.arguments.dropFirst()))))
            }
            try await runServices(services, logger: logger)
        }
    }
}

/// Runs services until SIGTERM or SIGINT, then shuts them down gracefully.
func runServices(_ services: [any Service], logger: Logger) async throws {
    let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                  gracefulShutdownSignals: [.sigterm, .sigint],
                                                  logger: Logger(label: "mgpu.lifecycle", factory: { label in
                                                      var h = OneLineLogHandler(logLevel: .warning, label: label)
                                                      h.logLevel = .warning
                                                      return h
                                                  })))
    do {
        try await group.run()
    } catch {
        throw CLIError("\(error)", exitCode: 1)
    }
}
