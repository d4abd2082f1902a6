import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `mgpu relay`: a TCP bridge for compute nodes that can only reach a login node. Every connection to
/// `listen` is joined to a new connection to `target`, bytes flow both ways, and when either side closes
/// both do. Agents use it like the master itself (`mgpu node --master-host LOGIN --master-port RELAY_PORT`).
public struct Relay: Service {
    public let listenHost: String
    public let listenPort: Int
    public let targetHost: String
    public let targetPort: Int
    let logger: Logger
    let onListening: @Sendable (Int) -> Void

    public init(listenHost: String, listenPort: Int, targetHost: String, targetPort: Int, logger: Logger,
                onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.targetHost = targetHost
        self.targetPort = targetPort
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let (targetHost, targetPort, logger) = (self.targetHost, self.targetPort, self.logger)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                let peer = inbound.remoteAddress?.description ?? "?"
                return ClientBootstrap(group: inbound.eventLoop)
                    .connectTimeout(.seconds(10))
                    .connect(host: targetHost, port: targetPort)
                    .flatMapThrowing { outbound in
                        let (a, b) = GlueHandler.matchedPair()
                        try inbound.pipeline.syncOperations.addHandler(a)
                        try outbound.pipeline.syncOperations.addHandler(b)
                        logger.debug("relay: connection from \(peer) joined to \(targetHost):\(targetPort)")
                    }
                    .flatMap {
                        // Read only once both sides are joined; from then on the glue handlers pace the reads.
                        inbound.setOption(.autoRead, value: true)
                    }
                    .flatMapErrorThrowing { error in
                        logger.warning("relay: cannot reach \(targetHost):\(targetPort) for \(peer): \(error)")
                        inbound.close(promise: nil)
                        throw error
                    }
            }
            .bind(host: listenHost, port: listenPort)
            .get()
        onListening(server.localAddress?.port ?? listenPort)
        await cancelWhenGracefulShutdown {
            try? await server.closeFuture.get()
        }
        try? await server.close()
    }
}
