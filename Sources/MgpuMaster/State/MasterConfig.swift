import Foundation

public struct MasterConfig: Sendable {
    public var host: String
    public var port: Int
    public var stateDir: String
    /// A node silent this long is DOWN ("not responding"); its jobs keep their GPUs.
    public var nodeTimeout: Double
    /// A node silent this long is lost: its running jobs end NODE_FAIL.
    public var nodeLostAfter: Double
    /// PEM certificate chain and private key: HTTPS for the API, the dashboard and agents.
    public var tlsCertificate: String?
    public var tlsKey: String?

    public init(host: String = "127.0.0.1", port: Int = 8080, stateDir: String, nodeTimeout: Double = 30, nodeLostAfter: Double = 600) {
        self.host = host
        self.port = port
        self.stateDir = stateDir
        self.nodeTimeout = nodeTimeout
        self.nodeLostAfter = nodeLostAfter
    }

    /// How long an agent's long-poll may wait: well inside the node timeout.
    public var pollSeconds: Double { max(0.2, min(20, nodeTimeout / 3)) }
    /// How often an agent reports in when idle.
    public var heartbeatSeconds: Double { max(0.2, min(5, nodeTimeout / 4)) }

    /// `$XDG_STATE_HOME/mgpu`, else `~/.local/state/mgpu`.
    public static var defaultStateDir: String {
        let env = ProcessInfo.processInfo.environment
        if let xdg = env["XDG_STATE_HOME"], !xdg.isEmpty { return xdg + "/mgpu" }
        return (env["HOME"] ?? NSHomeDirectory()) + "/.local/state/mgpu"
    }
}
