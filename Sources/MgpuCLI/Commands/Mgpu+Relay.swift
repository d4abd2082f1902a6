import ArgumentParser
import Foundation
import Logging
import MgpuRelay

extension Mgpu {
    struct Relay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "relay",
            abstract: "Forward TCP connections from --listen to --to (for compute nodes that can only reach a login node).",
            discussion: """
                On the login node:   mgpu relay --listen 0.0.0.0:9090 --to master-host:8080
                On compute nodes:    mgpu node --master-host login-node --master-port 9090
                """)

        @Option(help: ArgumentHelp("Where to accept connections, HOST:PORT (PORT 0: any free port).", valueName: "host:port"))
        var listen: String

        @Option(help: ArgumentHelp("Where to forward them, HOST:PORT (usually the master).", valueName: "host:port"))
        var to: String

        @Option(help: ArgumentHelp("Seconds with no bytes either way before a connection is closed (longer than the master's long-polls).", valueName: "s"))
        var idleTimeout: Double = 300

        @Option(help: ArgumentHelp("Connections relayed at once; more wait until one closes.", valueName: "n"))
        var maxConnections = 4096

        @OptionGroup var verbose: VerboseOption

        static func split(_ text: String, _ option: String) throws -> (String, Int) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port),
                  colon != text.startIndex else {
                throw ValidationError("\(option) takes HOST:PORT, e.g. 0.0.0.0:9090; got \(text.debugDescription)")
            }
            return (String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port)
        }

        func validate() throws {
            _ = try Self.split(listen, "--listen")
            let (_, port) = try Self.split(to, "--to")
            if port == 0 { throw ValidationError("--to needs a real port") }
            if idleTimeout <= 0 { throw ValidationError("--idle-timeout must be positive") }
            if maxConnections < 1 { throw ValidationError("--max-connections must be 1 or more") }
        }

        func run() async throws {
            OneLineLogHandler.bootstrap(verbose: verbose.verbose)
            let logger = Logger(label: "mgpu.relay")
            let (lh, lp) = try Self.split(listen, "--listen")
            let (th, tp) = try Self.split(to, "--to")
            var relay = MgpuRelay.Relay(listenHost: lh, listenPort: lp, targetHost: th, targetPort: tp, logger: logger) { port in
                say("mgpu relay listening on \(lh):\(port), forwarding to \(th):\(tp)")
            }
            relay.idleTimeout = idleTimeout
            relay.maxConnections = maxConnections
            try await runServices([relay], logger: logger)
        }
    }
}
