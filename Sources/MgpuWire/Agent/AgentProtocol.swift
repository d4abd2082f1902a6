/// mgpu's release (`mgpu --version`).
public let mgpuVersion = AgentProtocol.release

/// The version of the agent–master protocol, and which versions a master accepts from its agents.
///
/// An upgrade goes master first, then agents (running jobs keep running throughout): so a master accepts agents of
/// the older protocols as well as its own. An agent that is too old or too new gets one line saying which to
/// upgrade: its message is decoded, and only one that does not decode is read again for just its version
/// (`Envelope`), so that a changed message of another protocol gets that line, never a decode error.
///
/// - 1: mgpu 0.1 (its messages carry no version: absent means 1).
/// - 2: mgpu 0.2: messages say their protocol and release.
/// - 3: mgpu 0.3: a sync's telemetry sends its GPUs as rows (`gpuRows`, NodeTelemetry), not objects.
public enum AgentProtocol {
    public static let current = 3
    public static let oldestAccepted = 1
    /// mgpu's release.
    public static let release = "0.3.0"

    /// A message that says its protocol and release (register, sync).
    public protocol Versioned: Decodable {
        var protocolVersion: Int? { get }
        var mgpuVersion: String? { get }
    }

    /// Just those fields of an agent message, read when the rest does not decode.
    public struct Envelope: Codable, Sendable, Versioned {
        public var protocolVersion: Int?
        public var mgpuVersion: String?
    }

    /// Why a master of this build refuses an agent speaking `version` (nil: it speaks one this master accepts).
    public static func refusal(agentProtocol version: Int?, agentRelease: String?) -> String? {
        let version = version ?? 1
        // The release as the agent says it: a short token of printable ASCII, or not repeated.
        let release = agentRelease.map { String($0.prefix(32).filter { $0.isASCII && ($0.isLetter || $0.isNumber || ".-+_".contains($0)) }) }
        let agent = "this node's agent (mgpu \(release ?? "0.1"), protocol \(version))"
        let master = "the master (mgpu \(mgpuVersion), protocol \(oldestAccepted == current ? "\(current)" : "\(oldestAccepted)-\(current)"))"
        if version < oldestAccepted { return "\(agent) is too old for \(master): upgrade mgpu on this node" }
        if version > current { return "\(agent) is newer than \(master): upgrade the master first, then the agents" }
        return nil
    }
}
