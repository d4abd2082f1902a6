public import MgpuCore
import Foundation

/// What `--notify URL` receives (a POST, JSON) when a job ends or is marked idle. `text` is one readable line, so that
/// a Slack or Mattermost incoming webhook shows it as is.
public struct JobEvent: Codable, Sendable, Equatable {
    /// "job.ended" or "job.idle".
    public var event: String
    public var id: JobID
    public var name: String
    public var user: String
    public var state: JobState
    public var exit: String?
    /// The status a shell would report (0 when it completed).
    public var exitCode: Int32?
    public var elapsed: Double?
    public var gpuHours: Double
    public var text: String

    public init(event: String, job: Job, now: Double, idleThreshold: Double = 1) {
        self.event = event
        id = job.id
        name = job.name
        user = job.user
        state = job.state
        exit = job.exit?.summary
        exitCode = job.exit.map { $0.shellCode }
        elapsed = job.startTime.map { max(0, (job.endTime ?? now) - $0) }
        let usage = job.usage ?? JobUsage()
        gpuHours = usage.gpuSeconds / 3600
        let ran = elapsed.map { " after \(formatElapsed($0))" } ?? ""
        let how = event == "job.idle"
            ? "has kept its GPUs below \(formatPercent(idleThreshold)) for a while (idle)"
            : job.state.rawValue + ran + (job.exit.map { " (\($0.summary))" } ?? "")
        text = "mgpu: job \(job.id) (\(job.name), \(job.user)) \(how)" + (gpuHours > 0 ? String(format: ", %.2f GPU-hours", gpuHours) : "")
    }

    /// The URLs `--notify` takes (docs/openapi.yaml says the same): http or https, a host (and port) of plain
    /// characters, then any printable ASCII; at most 2,048 characters.
    public static let urlPattern = #"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._~%\[\]-][A-Za-z0-9._~%\[\]:!$&'()*+,;=-]*([/?#][!-~]*)?$"#

    public static func validURL(_ text: String) -> Bool {
        guard text.utf8.count <= 2048, let regex = try? Regex(urlPattern), (try? regex.wholeMatch(in: text)) != nil,
              let url = URL(string: text), let host = url.host, !host.isEmpty else { return false }
        // A port past 65535 would trap in the socket code, not fail: refuse it here.
        if let port = url.port, !(1...65535).contains(port) { return false }
        let authority = text.drop { $0 != "/" }.dropFirst(2).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            let digits = authority[authority.index(after: colon)...]
            guard !digits.isEmpty, digits.count <= 5, let port = Int(digits), (1...65535).contains(port) else { return false }
        }
        return true
    }
}
