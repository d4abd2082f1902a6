import Hummingbird
import NIOCore

/// Request context of the master's API: Hummingbird's core context plus the peer's address.
public struct MasterContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let peerAddress: String?
    /// The user the request's token belongs to (set by AuthMiddleware).
    public var user: Credentials.User?
    /// What the agent's token lets it do (set by AuthMiddleware on `/v1/agent/*`).
    public var agent: Credentials.AgentIdentity?

    /// The node an agent's credential speaks for, when it matches the node the request names.
    func node(named claimed: String) throws(CredentialError) -> String {
        switch agent {
        case .node(let id)?:
            guard id == claimed else { throw .wrongNode(credential: id, claimed: claimed) }
            return id
        default:
            throw .needsNodeCredential
        }
    }

    /// The node an agent's credential speaks for.
    func node() throws(CredentialError) -> String {
        guard case .node(let id)? = agent else { throw .needsNodeCredential }
        return id
    }

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Bulk submissions and output chunks stay well under this.
    public var maxUploadSize: Int { 16 << 20 }
}
