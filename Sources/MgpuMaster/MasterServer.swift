import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import ServiceLifecycle

/// Builds the master: the store, the state, the HTTP application and the liveness service.
public struct MasterServer: Sendable {
    public let config: MasterConfig
    public let state: MasterState
    public let store: SQLiteStore
    public let credentials: Credentials
    let logger: Logger
    /// Set when the master serves HTTPS.
    let tls: TLSConfiguration?
    let serverBuilder: HTTPServerBuilder
    /// The connections being served, for `--max-connections`.
    let connections: ConnectionRegistry
    /// Job notifications (`--notify`), posted by `NotifierService`.
    let notifier: Notifier

    public init(config: MasterConfig, logger: Logger) throws {
        try FileManager.default.createDirectory(atPath: config.stateDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        chmod(config.stateDir, 0o700)
        self.config = config
        self.logger = logger
        self.tls = try Self.tlsConfiguration(config)
        // A connection that sends nothing while no request of it is being answered (idle between requests, or a
        // request that stopped arriving half-way) is closed after the idle timeout; a long-poll being answered is not idle.
        let metrics = MasterMetrics()
        let registry = ConnectionRegistry(maximum: config.maxConnections) { metrics.connectionsOpened.increment() }
        self.connections = registry
        let http1 = HTTPServerBuilder.http1(configuration: .init(additionalChannelHandlers: [ConnectionActivity(registry: registry)],
                                                                 idleTimeout: .milliseconds(Int64(config.idleTimeout * 1000))))
        self.serverBuilder = try tls.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: $0) } ?? http1
        Self.raiseOpenFileLimit()
        self.store = try SQLiteStore(path: config.stateDir + "/mgpu.sqlite")
        self.credentials = try Credentials(stateDir: config.stateDir, queue: store.queue, ownerName: Self.unixUser())
        metrics.bootstrapMetricsSystem()
        let notifier = Notifier()
        self.notifier = notifier
        self.state = try MasterState(config: config, store: store, logger: logger, metrics: metrics, notifier: notifier)
    }

    public var databasePath: String { store.path }

    /// "https" with --tls-cert/--tls-key, else "http".
    public var scheme: String { tls == nil ? "http" : "https" }

    static func tlsConfiguration(_ config: MasterConfig) throws -> TLSConfiguration? {
        switch (config.tlsCertificate, config.tlsKey) {
        case (nil, nil): return nil
        case let (cert?, key?):
            let chain: [NIOSSLCertificate]
            do { chain = try NIOSSLCertificate.fromPEMFile(cert) } catch {
                throw TLSSetupError("cannot read the TLS certificate \(cert): \(error)")
            }
            let privateKey: NIOSSLPrivateKey
            do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
                throw TLSSetupError("cannot read the TLS private key \(key): \(error)")
            }
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                                         privateKey: .privateKey(privateKey))
            configuration.minimumTLSVersion = .tlsv12
            // Fails now, not at the first connection, when the key does not match the certificate.
            do { _ = try NIOSSLContext(configuration: configuration) } catch {
                throw TLSSetupError("cannot use \(cert) with \(key): \(error)")
            }
            return configuration
        default:
            throw TLSSetupError("--tls-cert and --tls-key go together")
        }
    }

    /// Every connection is a descriptor: take the hard limit, so that --max-connections fits (the default soft limit is
    /// often 1,024).
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// The Unix user running the master: the first admin.
    public static func unixUser() -> String {
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return ProcessInfo.processInfo.environment["USER"] ?? "admin"
    }

    /// The services to run: the HTTP API, the liveness checker and the notifier. `onListening` gets the bound port.
    public func services(onListening: @escaping @Sendable (Int) async -> Void) -> [any Service] {
        // The HTTP server's own events, warnings and worse, in the master's format. Hummingbird gives each request a
        // copy with its request id set: StreamLogHandler formatted its metadata on every such set (1,000 agents'
        // heartbeats: 8.1 % of a core with it, 7.5 % without).
        var httpLogger = logger
        httpLogger.logLevel = .warning
        let app = Application(
            router: APIRouter.build(state: state, credentials: credentials, logger: logger),
            server: serverBuilder,
            // At most --max-connections at once: past it, a new connection closes the quietest one that waits for no
            // answer (ConnectionLimit.swift), or waits in the backlog when every one does.
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "mgpu", backlog: 1024,
                                 availableConnectionsDelegate: EvictingConnectionLimit(registry: connections)),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: httpLogger
        )
        let liveness = LivenessService(state: state, interval: max(0.1, min(1, config.nodeTimeout / 10)))
        // A ServiceGroup shuts its services down in reverse order, each after the one before has returned: first
        // every long-poll is answered, then the liveness loop stops, then the HTTP server stops accepting and
        // finishes the requests in flight (their writes included), and only then is the store closed. Notifications
        // still being posted are given up at shutdown (with the long-polls).
        return [CloseStoreAtShutdown(store: store, logger: logger), app, liveness, NotifierService(notifier: notifier, logger: logger),
                WakeLongPollsAtShutdown(state: state)]
    }
}

/// At graceful shutdown: answer every long-poll (and refuse to start new waits) so that connections end.
struct WakeLongPollsAtShutdown: Service {
    let state: MasterState

    func run() async throws {
        try? await gracefulShutdown()
        state.wakeAll()
    }
}

/// At graceful shutdown, once the HTTP server is done: close the store (SQLite checkpoints its WAL).
struct CloseStoreAtShutdown: Service {
    let store: SQLiteStore
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        do {
            try store.close()
            logger.info("store closed", metadata: ["path": "\(store.path)"])
        } catch {
            logger.error("could not close the store \(store.path): \(error)")
        }
    }
}

/// A TLS setting the master cannot serve with (an unreadable certificate, a key that does not match), in one line.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
