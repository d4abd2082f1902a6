import ArgumentParser
import Foundation
import Logging
import MgpuAgent
import MgpuClient
import MgpuMaster
import ServiceLifecycle

extension Mgpu {
    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "up",
            abstract: "Run a master and a local node agent in one process: mgpu on one workstation, zero setup.")

        @OptionGroup var master: MasterOptions
        @OptionGroup var agent: AgentOptions
        @OptionGroup var verbose: VerboseOption
        @OptionGroup var configFile: ConfigOption

        func run() async throws {
            OneLineLogHandler.bootstrap(verbose: verbose.verbose)
            let logger = Logger(label: "mgpu")
            let server = try master.makeServer(logger: logger)
            let ports = AsyncStream<Int>.makeStream()
            let host = master.host == "0.0.0.0" ? "127.0.0.1" : master.host
            var services = server.services { port in
                say("mgpu master listening on \(server.scheme)://\(master.host):\(port)")
                say("state: \(server.databasePath) (job output in \(server.config.stateDir)/output)")
                say("agents need \(server.config.stateDir)/cluster.secret; your token: \(server.config.stateDir)/tokens/\(MasterServer.unixUser())")
                say("dashboard: \(server.scheme)://\(master.host == "0.0.0.0" ? "127.0.0.1" : master.host):\(port)/ (sign in with your token, or a link from `mgpu dashboard`)")
                SystemdNotify.send("READY=1\nSTATUS=listening on port \(port)")
                ports.continuation.yield(port)
                ports.continuation.finish()
            }
            var agentConfig = try agent.config(masterHost: host, masterPort: master.port,
                                               stateDir: server.config.stateDir + "/node-\(agent.resolvedNodeId)", logger: logger)
            agentConfig.token = server.credentials.clusterSecret
            if let cert = master.tlsCert, agentConfig.tls == nil {
                // The local agent dials its own master on loopback: it trusts that certificate (self-signed; for one a CA
                // signed, give the CA with --ca-cert), whatever name it carries.
                do { agentConfig.tls = try ClientTLS(caCertificate: cert, verifyHostname: false) } catch {
                    throw CLIError("\(error)", exitCode: 2)
                }
            }
            services.append(LocalAgent(config: agentConfig, ports: ports.stream, logger: logger))
            if let path = configFile.path {
                services.append(PolicyReloadService(path: path, state: server.state, logger: logger, started: server.config.policy,
                                                    flagged: PolicyReloadService.flaggedKeys(Array(CommandLine.arguments.dropFirst()))))
            }
            try await runServices(services, logger: logger)
        }
    }
}

/// The agent of `mgpu up`: starts once the master listens, on the port it got.
struct LocalAgent: Service {
    let config: AgentConfig
    let ports: AsyncStream<Int>
    let logger: Logger

    func run() async throws {
        var config = config
        for await port in ports.cancelOnGracefulShutdown() {
            config.masterPort = port
            break
        }
        if Task.isShuttingDownGracefully { return }
        try await AgentService(config: config, logger: logger).run()
    }
}
