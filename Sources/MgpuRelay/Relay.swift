import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `mgpu relay`: a TCP bridge for compute nodes that can only reach a login node. Every connection to
/// `listen` is joined to a new connection to `target`, bytes flow both ways, and when either side closes
/// both do. Agents use it like the master itself (`mgpu node --master-host LOGIN --master-port RELAY_PORT`).
/// A connection with no bytes either way for `idleTimeout` is closed (longer than any long-poll of the master's), and
/// at most `maxConnections` are relayed at once; more wait to be accepted.
public struct Relay: Service {
    public let listenHost: String
    public let listenPort: Int
    public let targetHost: String
    public let targetPort: Int
    public var idleTimeout: Double = 300
    public var maxConnections = 4096
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
        let idle = TimeAmount.milliseconds(Int64(idleTimeout * 1000)), maxConnections = self.maxConnections
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AvailableConnectionsChannelHandler(maxConnections: maxConnections))
                }
            }
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                let peer = inbound.remoteAddress?.description ?? "?"
                return ClientBootstrap(group: inbound.eventLoop)
                    .connectTimeout(.seconds(10))
                    .connect(host: targetHost, port: targetPort)
                    .flatMapThrowing { outbound in
                        let (a, b) = GlueHandler.matchedPair()
                        try inbound.pipeline.syncOperations.addHandlers([IdleStateHandler(allTimeout: idle), CloseWhenIdle()])
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

/// Closes its channel when the IdleStateHandler before it says nothing moved for its timeout (the glue then closes the
/// other side too).
final class CloseWhenIdle: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
