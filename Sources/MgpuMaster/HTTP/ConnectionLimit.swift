import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

/// At most `--max-connections` connections are served at once. When the cap is reached, a new connection is let in
/// by closing the connection that has been quiet the longest, unless that one is waiting for its answer (a long-poll,
/// a request being handled): so connections held open by sending a cheap request now and then (or nothing at all)
/// cannot keep agents and users out, while work in flight is never cut. Only when every connection is waiting for its
/// answer do new ones wait to be accepted.
final class ConnectionRegistry: Sendable {
    let maximum: Int
    /// Called for every connection accepted.
    let onOpen: @Sendable () -> Void
    private let state = Mutex(State())

    private struct State {
        var next = 0
        var connections: [Int: Entry] = [:]
    }

    private struct Entry {
        let channel: any Channel
        var answering = false
        var lastActive: NIODeadline
    }

    init(maximum: Int, onOpen: @escaping @Sendable () -> Void = {}) {
        self.maximum = maximum
        self.onOpen = onOpen
    }

    var count: Int { state.withLock { $0.connections.count } }

    func register(_ channel: any Channel) -> Int {
        onOpen()
        return state.withLock { state in
            state.next += 1
            state.connections[state.next] = Entry(channel: channel, lastActive: .now())
            return state.next
        }
    }

    func unregister(_ id: Int) { _ = state.withLock { $0.connections.removeValue(forKey: id) } }

    /// A request arrived whole (`answering`), or its answer went out, or bytes of it arrived.
    func mark(_ id: Int, answering: Bool) {
        state.withLock { state in
            state.connections[id]?.answering = answering
            state.connections[id]?.lastActive = .now()
        }
    }

    /// Whether a new connection may come in: below the cap, or once the quietest connection not waiting for an
    /// answer has been told to close.
    func admit() -> Bool {
        let victim: (any Channel)? = state.withLock { state in
            guard state.connections.count >= maximum else { return nil }
            guard let (id, entry) = state.connections.filter({ !$0.value.answering }).min(by: { $0.value.lastActive < $1.value.lastActive })
            else { return nil }
            state.connections[id] = nil
            return entry.channel
        }
        guard let victim else { return count < maximum }
        victim.close(promise: nil)
        return true
    }
}

/// Hummingbird's hook for accepting connections, backed by the registry.
struct EvictingConnectionLimit: AvailableConnectionsDelegate {
    let registry: ConnectionRegistry
    mutating func connectionOpened() {}
    mutating func connectionClosed() {}
    func isAcceptingNewConnections() -> Bool { registry.admit() }
}

/// One per connection, after the HTTP codec: keeps the registry told what the connection is doing.
final class ConnectionActivity: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let registry: ConnectionRegistry
    var id: Int?

    init(registry: ConnectionRegistry) { self.registry = registry }

    func handlerAdded(context: ChannelHandlerContext) {
        id = registry.register(context.channel)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if let id { registry.unregister(id) }
        id = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let id { registry.unregister(id) }
        id = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let id {
            if case .end = unwrapInboundIn(data) { registry.mark(id, answering: true) } else { registry.mark(id, answering: false) }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if let id, case .end = unwrapOutboundIn(data) { registry.mark(id, answering: false) }
        context.write(data, promise: promise)
    }
}
