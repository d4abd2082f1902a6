import Foundation
public import MgpuCore
public import MgpuWire

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
    /// What one submission may hold (`--max-environment-bytes`, `--max-command-bytes`, `--max-request-bytes`).
    public var submitLimits = SubmitLimits()
    /// Pending jobs one user may have (`--max-pending-per-user`): past it, submissions are refused.
    public var maxPendingPerUser = 10_000
    /// Bytes of stdin one interactive job may be sent (`--max-stdin-bytes`).
    public var maxStdinBytes: Int64 = 64 << 20
    /// A connection that sends nothing for this long while no request is being answered is closed (`--idle-timeout`).
    public var idleTimeout: Double = 60
    /// Connections served at once (`--max-connections`); more wait to be accepted.
    public var maxConnections = 4096
    /// Ended jobs stay in memory this long (`--keep-ended`), then only in the store.
    public var keepEndedSeconds: Double = 3600
    /// Ended jobs stay in the store (`mgpu history`, `mgpu report`) this long (`--history-days`); nil: forever.
    public var historySeconds: Double? = 365 * 86_400
    /// Idle GPUs: when a running job is marked idle, and what then (`--idle-*`).
    public var idle = IdleRule()
    /// How the cluster is shared (`--policy`, `--default-time`, `--max-time`, `--fair-share-half-life`); accounts and
    /// users' settings come from the store (`mgpu admin account/user`).
    public var policy = SharingPolicy()

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
    /// How long after its time limit a job may still hold its GPUs: the default kill grace (10 s), then a report.
    /// Backfill onto reserved GPUs leaves this much room (`mgpu sim` sets 0: its agents have no grace and report at once).
    public var backfillSlack: Double { backfillSlackOverride ?? 10 + heartbeatSeconds }
    public var backfillSlackOverride: Double?

    /// `$XDG_STATE_HOME/mgpu`, else `~/.local/state/mgpu`.
    public static var defaultStateDir: String {
        let env = ProcessInfo.processInfo.environment
        if let xdg = env["XDG_STATE_HOME"], !xdg.isEmpty { return xdg + "/mgpu" }
        return (env["HOME"] ?? NSHomeDirectory()) + "/.local/state/mgpu"
    }
}
