import Hummingbird
import NIOCore

/// Request context of the master's API: Hummingbird's core context plus the peer's address.
public struct MasterContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let peerAddress: String?
    /// The user the request's token belongs to (set by AuthMiddleware).
    public var user: Credentials.User?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Bulk submissions and output chunks stay well under this.
    public var maxUploadSize: Int { 16 << 20 }
}
