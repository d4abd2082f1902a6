public import Foundation
public import MgpuCore
public import MgpuWire
import NIOHTTP1

/// An error answer from the master, with its message.
public struct APIError: Error, CustomStringConvertible {
    public let status: Int
    public let message: String
    public var description: String { message }
}

/// Typed calls of the master's HTTP API.
public struct MasterClient: Sendable {
    public let http: HTTPClient
    public var host: String { http.host }
    public var port: Int { http.port }

    public init(host: String, port: Int, connectTimeout: Double = 5, token: String? = nil, tls: ClientTLS? = nil,
                oneShot: Bool = false) {
        self.http = HTTPClient(host: host, port: port, connectTimeout: connectTimeout, token: token, tls: tls, oneShot: oneShot)
    }

    static let encoder = JSONEncoder()
    /// An agent's syncs: its telemetry's GPUs as rows (protocol 3, NodeTelemetry.compactGPUs).
    static let syncEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.userInfo[NodeTelemetry.compactGPUs] = true
        return encoder
    }()

    func call<Response: Decodable>(_ method: HTTPMethod, _ path: String, body: (some Encodable)?,
                                   timeout: Double = 30, encoder: JSONEncoder = MasterClient.encoder,
                                   as: Response.Type) async throws -> Response {
        let data = try body.map { Array(try encoder.encode($0)) }
        let result = try await http.request(method, path, body: data, timeout: timeout)
        try Self.check(result)
        do {
            return try JSONDecoder().decode(Response.self, from: Data(result.body))
        } catch {
            throw APIError(status: result.status, message: "unexpected answer from the master: \(error)")
        }
    }

    static func check(_ result: HTTPResult) throws {
        guard (200..<300).contains(result.status) else {
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(result.body)))?.error.message
                ?? String(decoding: result.body.prefix(300), as: UTF8.self)
            throw APIError(status: result.status, message: message.isEmpty ? "HTTP \(result.status)" : message)
        }
    }

    // MARK: Jobs

    public func submit(_ jobs: [JobSpec]) async throws -> [JobID] {
        try await call(.POST, "/v1/jobs", body: SubmitRequest(jobs: jobs), as: SubmitResponse.self).ids
    }

    /// One job per command, all otherwise like `template`, in one compact request.
    public func submit(template: JobSpec, commands: [String]) async throws -> [JobID] {
        try await call(.POST, "/v1/jobs", body: SubmitRequest(jobs: [template], commands: commands), as: SubmitResponse.self).ids
    }

    public func queue() async throws -> QueueResponse {
        try await call(.GET, "/v1/queue", body: Optional<Int>.none, as: QueueResponse.self)
    }

    /// The master's JSON of the queue, as it sent it (`mgpu queue --json`: nothing decoded and encoded again).
    public func queueJSON() async throws -> [UInt8] {
        try await bytes("/v1/queue")
    }

    /// The queue as the table `mgpu queue` prints, rendered by the master.
    public func queueTable() async throws -> String {
        String(decoding: try await queueTableBytes(), as: UTF8.self)
    }

    /// The same as the master sent it (`mgpu queue` writes it out as it is).
    public func queueTableBytes() async throws -> [UInt8] {
        try await bytes("/v1/queue?format=text")
    }

    /// A GET's answer as the master sent it.
    func bytes(_ path: String) async throws -> [UInt8] {
        let result = try await http.request(.GET, path)
        try Self.check(result)
        return result.body
    }

    // MARK: History

    /// Ended jobs (`mgpu history`); `users` nil: one's own (everyone's for an admin), ["*"]: everyone's.
    public func history(_ query: HistoryQuery) async throws -> HistoryResponse {
        var items: [(String, String)] = [("limit", "\(query.limit)")]
        if let users = query.users { items.append(("user", users.joined(separator: ","))) }
        if let states = query.states { items.append(("state", states.map(\.rawValue).joined(separator: ","))) }
        if let since = query.since { items.append(("since", "\(since)")) }
        if let until = query.until { items.append(("until", "\(until)")) }
        if let node = query.node { items.append(("node", node)) }
        if let name = query.name { items.append(("name", name)) }
        return try await call(.GET, "/v1/history?" + Self.queryString(items), body: Optional<Int>.none, as: HistoryResponse.self)
    }

    /// Ended jobs summed per user, account, node or GPU model (`mgpu report`).
    public func report(since: Double, until: Double, by: ReportGrouping, users: [String]?) async throws -> ReportResponse {
        var items = [("since", "\(since)"), ("until", "\(until)"), ("by", by.rawValue)]
        if let users { items.append(("user", users.joined(separator: ","))) }
        return try await call(.GET, "/v1/report?" + Self.queryString(items), body: Optional<Int>.none, as: ReportResponse.self)
    }

    static func queryString(_ items: [(String, String)]) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+#")
        return items.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    /// Waits up to `seconds` (at most 60) for a job, or all of an array's tasks, to end.
    public func waitForEnd(_ id: String, seconds: Double) async throws -> WaitResponse {
        try await call(.GET, "/v1/jobs/\(id)/wait?seconds=\(seconds)", body: Optional<Int>.none, timeout: seconds + 30,
                       as: WaitResponse.self)
    }

    public func job(_ id: String) async throws -> JobInfo {
        try await call(.GET, "/v1/jobs/\(id)", body: Optional<Int>.none, as: JobInfo.self)
    }

    public func cancel(_ ids: [String]) async throws -> CancelResponse {
        try await call(.POST, "/v1/jobs/cancel", body: CancelRequest(ids: ids), as: CancelResponse.self)
    }

    /// Output of one stream of one rank from `offset`; waits up to `wait` s for new bytes.
    public func output(job: String, rank: Int, stream: StreamName, offset: Int64, wait: Double) async throws
        -> (bytes: [UInt8], size: Int64, complete: Bool) {
        let result = try await http.request(.GET, "/v1/jobs/\(job)/output?rank=\(rank)&stream=\(stream.rawValue)&offset=\(offset)&wait=\(wait)",
                                            timeout: wait + 30)
        try Self.check(result)
        let size = result.header(OutputHeader.size).flatMap { Int64($0) } ?? offset + Int64(result.body.count)
        return (result.body, size, result.header(OutputHeader.complete) == "1")
    }

    /// The job and what is new on each of its streams from `offsets` (rank 0's stdout and stderr, then rank 1's...), at
    /// most `limit` bytes; when nothing is new and it is still `seen`, the master waits up to `wait` s for a change.
    public func follow(job: String, offsets: [Int64], seen: JobState?, wait: Double, limit: Int = FollowLimits.maxBytes) async throws
        -> FollowResponse {
        var path = "/v1/jobs/\(job)/follow?wait=\(wait)&limit=\(limit)"
        if let seen { path += "&state=\(seen.rawValue)" }
        if !offsets.isEmpty { path += "&offsets=" + offsets.map(String.init).joined(separator: ",") }
        return try await call(.GET, path, body: Optional<Int>.none, timeout: wait + 30, as: FollowResponse.self)
    }

    /// Where the last `lines` lines of a stream start.
    public func tailOffset(job: String, rank: Int, stream: StreamName, lines: Int) async throws -> Int64 {
        let result = try await http.request(.GET, "/v1/jobs/\(job)/output?rank=\(rank)&stream=\(stream.rawValue)&tailLines=\(lines)&wait=0")
        try Self.check(result)
        return result.header(OutputHeader.offset).flatMap { Int64($0) } ?? 0
    }

    /// Sends what the user typed to an interactive job's stdin; `eof` closes it. Returns the master's size.
    public func sendStdin(job: String, offset: Int64, bytes: [UInt8], eof: Bool) async throws -> Int64 {
        let result = try await http.request(.POST, "/v1/jobs/\(job)/stdin?offset=\(offset)\(eof ? "&eof=1" : "")", body: bytes,
                                            contentType: "application/octet-stream")
        try Self.check(result)
        return try JSONDecoder().decode(OutputAck.self, from: Data(result.body)).size
    }

    /// An interactive job's stdin from `offset` (for its agent); waits up to `wait` s for some.
    public func stdin(job: JobID, offset: Int64, wait: Double) async throws -> (bytes: [UInt8], size: Int64, eof: Bool) {
        let result = try await http.request(.GET, "/v1/agent/stdin?job=\(job)&offset=\(offset)&wait=\(wait)", timeout: wait + 30)
        try Self.check(result)
        let size = result.header(OutputHeader.size).flatMap { Int64($0) } ?? offset + Int64(result.body.count)
        return (result.body, size, result.header(OutputHeader.eof) == "1")
    }

    // MARK: Agent

    public func addUser(_ name: String, admin: Bool) async throws -> AddUserResponse {
        try await call(.POST, "/v1/admin/users", body: AddUserRequest(name: name, admin: admin), as: AddUserResponse.self)
    }

    /// Who this client's token belongs to.
    public func whoami() async throws -> WhoAmIResponse {
        try await call(.GET, "/v1/whoami", body: Optional<Int>.none, as: WhoAmIResponse.self)
    }

    /// A one-time code that signs this client's user in to the dashboard (`/?code=CODE`).
    public func signInCode() async throws -> SignInCodeResponse {
        try await call(.POST, "/v1/signin/codes", body: Optional<Int>.none, as: SignInCodeResponse.self)
    }

    public func users() async throws -> [AddUserResponse] {
        try await call(.GET, "/v1/admin/users", body: Optional<Int>.none, as: [AddUserResponse].self)
    }

    /// Sets an account's shares and limits (admins only).
    public func setAccount(_ name: String, _ settings: PolicySettings) async throws -> PolicyReport {
        try await call(.PUT, "/v1/admin/accounts/\(name)", body: settings, as: PolicyReport.self)
    }

    /// Sets a user's account, shares and limits (admins only).
    public func setUserPolicy(_ name: String, _ settings: PolicySettings) async throws -> PolicyReport {
        try await call(.PUT, "/v1/admin/policy/users/\(name)", body: settings, as: PolicyReport.self)
    }

    public func policyReport() async throws -> PolicyReport {
        try await call(.GET, "/v1/admin/policy", body: Optional<Int>.none, as: PolicyReport.self)
    }

    /// Drains a node: no new jobs; running ones finish (admins only).
    public func drainNode(_ id: String, reason: String?) async throws -> NodeInfo {
        try await call(.POST, "/v1/admin/nodes/\(id)/drain", body: DrainRequest(reason: reason), as: NodeInfo.self)
    }

    /// Lets a drained node take jobs again (admins only).
    public func resumeNode(_ id: String) async throws -> NodeInfo {
        try await call(.POST, "/v1/admin/nodes/\(id)/resume", body: Optional<Int>.none, as: NodeInfo.self)
    }

    /// Forgets a node and its credential (admins only).
    public func removeNode(_ id: String) async throws {
        _ = try await call(.DELETE, "/v1/admin/nodes/\(id)", body: Optional<Int>.none, as: [String: String].self)
    }

    public func register(_ request: RegisterRequest) async throws -> RegisterResponse {
        try await call(.POST, "/v1/agent/register", body: request, as: RegisterResponse.self)
    }

    public func sync(_ request: SyncRequest) async throws -> SyncResponse {
        try await call(.POST, "/v1/agent/sync", body: request, timeout: request.wait + 15, encoder: Self.syncEncoder,
                       as: SyncResponse.self)
    }

    public func deregister(_ request: DeregisterRequest) async throws {
        _ = try await call(.POST, "/v1/agent/deregister", body: request, as: [String: String].self)
    }

    /// A part's output (the node is the one the agent's credential speaks for).
    public func sendOutput(job: JobID, rank: Int, stream: StreamName, offset: Int64, bytes: [UInt8]) async throws -> Int64 {
        let path = "/v1/agent/output?job=\(job)&rank=\(rank)&stream=\(stream.rawValue)&offset=\(offset)"
        let result = try await http.request(.POST, path, body: bytes, contentType: "application/octet-stream")
        try Self.check(result)
        return try JSONDecoder().decode(OutputAck.self, from: Data(result.body)).size
    }
}
