import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import MgpuCore
import MgpuWire

/// The HTTP/JSON API under /v1.
enum APIRouter {
    static func build(state: MasterState, credentials: Credentials, logger: Logger) -> Router<MasterContext> {
        let queueJSON = QueueJSON(encoder: encoder)
        let router = Router(context: MasterContext.self)
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: AuthMiddleware(credentials: credentials, logger: logger))

        router.get("/v1/health") { _, _ in try json(["status": "ok"]) }

        // Signing in (the dashboard): who a token is, and one-time codes that `mgpu dashboard` puts in a link.
        router.get("/v1/whoami") { _, context in
            guard let user = context.user else { throw HTTPError(.unauthorized) }
            return try json(WhoAmIResponse(name: user.name, admin: user.admin))
        }
        router.post("/v1/signin/codes") { _, context in
            guard let user = context.user else { throw HTTPError(.unauthorized) }
            guard let code = credentials.issueSignInCode(for: user) else {
                throw HTTPError(.tooManyRequests, message: "too many sign-in links are waiting to be used: try again in a minute")
            }
            logger.info("sign-in code issued", metadata: ["user": "\(user.name)"])
            return try json(SignInCodeResponse(code: code, expiresIn: Credentials.signInCodeLifetime), status: .created)
        }
        router.post("/v1/signin") { request, context in
            let body = try await request.decode(as: SignInRequest.self, context: context)
            guard let (user, token) = credentials.redeemSignInCode(body.code) else {
                logger.warning("refused a sign-in code that is unknown, used or expired", metadata: ["peer": "\(context.peerAddress ?? "?")"])
                throw HTTPError(.unauthorized, message: "this sign-in link is unknown, used or expired (each works once, for \(Int(Credentials.signInCodeLifetime)) s): run `mgpu dashboard` again")
            }
            logger.info("signed in with a one-time code", metadata: ["user": "\(user.name)", "peer": "\(context.peerAddress ?? "?")"])
            return try json(SignInResponse(name: user.name, admin: user.admin, token: token))
        }

        // Dashboard, live events, metrics
        router.get("/") { _, _ in page(DashboardPage.html) }
        router.get("/favicon.ico") { _, _ in Response(status: .noContent) }
        router.get("/jobs/{id}") { _, context in page(DashboardPage.jobPage(try jobID(context).rawValue)) }
        router.get("/v1/events") { request, _ in
            // `limit=N` ends the stream after N events; the browser's EventSource then reconnects by itself.
            let limit = try intParam(request.uri.queryParameters["limit"].map(String.init), "limit", default: .max, range: 1...Int.max)
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                // A snapshot now, then on every change (at most one a second) and at least every 5 s.
                try await writer.write(ByteBuffer(string: "retry: 500\n\n"))
                var sent = 0
                repeat {
                    let data = try encoder.encode(await state.dashboardSnapshot())
                    var buffer = ByteBuffer(string: "data: ")
                    buffer.writeBytes(data)
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                    sent += 1
                    if sent >= limit { break }
                    try await Task.sleep(for: .seconds(1))
                } while await state.waitForDashboardChange(seconds: 4)
                try await writer.finish(nil)
            })
        }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: await state.metricsText())))
        }
        router.get("/v1/nodes/{id}/history") { request, context in
            let id = context.parameters.get("id") ?? ""
            let q = request.uri.queryParameters
            let minutes = min(60, max(1, try numberParam(q["minutes"].map(String.init), "minutes", default: 15)))
            let points = try intParam(q["points"].map(String.init), "points", default: 60, range: 1...720)
            guard let history = await state.nodeHistory(id, minutes: minutes, points: points) else {
                throw HTTPError(.notFound, message: "no node \(id)")
            }
            return try json(history)
        }

        // Jobs
        router.post("/v1/jobs") { request, context in
            var body = try await request.decode(as: SubmitRequest.self, context: context)
            // A job belongs to the user whose token submitted it, whatever the request says; its token stays here.
            let token = request.headers[.authorization].map { String($0.dropFirst(7)) }
            for i in body.jobs.indices {
                if (body.jobs[i].nice ?? 0) < 0 && context.user?.admin != true {
                    throw HTTPError(.forbidden, message: "only an admin may raise a job's priority (a negative --nice)")
                }
                body.jobs[i].user = context.user?.name ?? "?"
                body.jobs[i].removeSecrets(token.map { [$0] } ?? [])
            }
            let ids = try await state.submit(body)
            return json(bytes: SubmitResponse(ids: ids).json, status: .created)
        }
        router.get("/v1/jobs/{id}") { _, context in
            let id = try jobID(context)
            guard let info = await state.jobInfo(id) else { throw HTTPError(.notFound, message: "no job \(id)") }
            return try json(info)
        }
        router.get("/v1/jobs/{id}/wait") { request, context in
            let id = try jobID(context)
            let seconds = min(60, max(0, try numberParam(request.uri.queryParameters["seconds"].map(String.init), "seconds", default: 30)))
            guard let answer = await state.waitForEnd(id, seconds: seconds) else { throw HTTPError(.notFound, message: "no job \(id)") }
            return try json(answer)
        }
        router.post("/v1/jobs/cancel") { request, context in
            let body = try await request.decode(as: CancelRequest.self, context: context)
            guard !body.ids.isEmpty, body.ids.count <= 100_000 else {
                throw HTTPError(.badRequest, message: "give between 1 and 100000 job ids")
            }
            return try json(CancelResponse(results: try await state.cancel(body.ids, by: context.user)))
        }
        router.get("/v1/jobs/{id}/output") { request, context in
            let id = try jobID(context)
            try await state.checkOwner(id, context.user)
            let q = request.uri.queryParameters
            let rank = try intParam(q["rank"].map(String.init), "rank", default: 0, range: 0...100_000)
            let stream = try streamParam(q["stream"].map(String.init))
            var offset = try Int64(intParam(q["offset"].map(String.init), "offset", default: 0, range: 0...Int.max))
            let wait = min(60, max(0, try numberParam(q["wait"].map(String.init), "wait", default: 0)))
            if let tail = q["tailLines"].map(String.init) {
                let lines = try intParam(tail, "tailLines", default: 10, range: 0...1_000_000)
                guard let start = await state.tailOffset(job: id, rank: rank, stream: stream, lines: lines) else {
                    throw HTTPError(.notFound, message: "no job \(id)")
                }
                offset = start
            }
            guard let out = await state.readOutput(job: id, rank: rank, stream: stream, offset: offset, wait: wait) else {
                throw HTTPError(.notFound, message: "no job \(id)")
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/octet-stream"
            headers[HTTPField.Name(OutputHeader.offset)!] = String(offset)
            headers[HTTPField.Name(OutputHeader.size)!] = String(out.size)
            headers[HTTPField.Name(OutputHeader.complete)!] = out.complete ? "1" : "0"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: out.bytes)))
        }
        router.get("/v1/jobs/{id}/follow") { request, context in
            let id = try jobID(context)
            try await state.checkOwner(id, context.user)
            let q = request.uri.queryParameters
            let wait = min(60, max(0, try numberParam(q["wait"].map(String.init), "wait", default: 0)))
            let limit = try intParam(q["limit"].map(String.init), "limit", default: FollowLimits.maxBytes, range: 0...FollowLimits.maxBytes)
            let seen = try q["state"].map { text -> JobState in
                guard let state = JobState(rawValue: String(text)) else {
                    throw HTTPError(.badRequest, message: "state must be one of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return state
            }
            let offsets = try offsetsParam(q["offsets"].map(String.init))
            guard let answer = await state.follow(job: id, offsets: offsets, seen: seen, wait: wait, limit: limit) else {
                throw HTTPError(.notFound, message: "no job \(id)")
            }
            return try json(answer)
        }
        router.post("/v1/jobs/{id}/stdin") { request, context in
            let id = try jobID(context)
            try await state.checkOwner(id, context.user)
            let q = request.uri.queryParameters
            let offset = try Int64(intParam(q["offset"].map(String.init), "offset", default: 0, range: 0...Int.max))
            let eof = q["eof"].map(String.init) == "1"
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            guard let size = try await state.appendStdin(job: id, offset: offset, bytes: Array(buffer.readableBytesView), eof: eof) else {
                throw HTTPError(.notFound, message: "no job \(id)")
            }
            return try json(OutputAck(size: size))
        }
        router.get("/v1/agent/stdin") { request, context in
            let node = try context.node()
            let q = request.uri.queryParameters
            guard let text = q["job"].map(String.init), let id = JobID(text) else {
                throw HTTPError(.badRequest, message: "job must be 8 hex digits, or ID_N for an array task")
            }
            let offset = try Int64(intParam(q["offset"].map(String.init), "offset", default: 0, range: 0...Int.max))
            let wait = min(60, max(0, try numberParam(q["wait"].map(String.init), "wait", default: 0)))
            guard let input = await state.readStdin(job: id, node: node, offset: offset, wait: wait) else {
                throw HTTPError(.notFound, message: "no job \(id) with a part on node \(node)")
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/octet-stream"
            headers[HTTPField.Name(OutputHeader.size)!] = String(input.size)
            headers[HTTPField.Name(OutputHeader.eof)!] = input.eof ? "1" : "0"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: input.bytes)))
        }
        router.get("/v1/queue") { request, _ in
            let within = try numberParam(request.uri.queryParameters["finished"].map(String.init), "finished", default: 300)
            switch request.uri.queryParameters["format"].map(String.init) {
            case nil, "json":
                let listing = await state.queueRows(finishedWithin: max(0, within))
                return json(bytes: try queueJSON.encode(now: listing.now, jobs: listing.jobs, nodes: listing.nodes))
            case "text":
                return text(await state.queueListing(finishedWithin: max(0, within), endedShown: QueueListing.endedShown).renderBytes())
            case let other?: throw HTTPError(.badRequest, message: "format must be json or text, got \(other.debugDescription)")
            }
        }
        // History and accounting: a user sees their own jobs, an admin anyone's.
        router.get("/v1/history") { request, context in
            let q = request.uri.queryParameters
            var query = HistoryQuery(limit: try intParam(q["limit"].map(String.init), "limit", default: 1000, range: 1...1_000_000))
            query.users = try historyUsers(q["user"].map(String.init), context.user)
            if let states = q["state"].map(String.init) {
                query.states = try states.split(separator: ",").map { name in
                    guard let state = JobState(rawValue: name.uppercased()), state.isTerminal else {
                        throw HTTPError(.badRequest, message: "state must be one or more of COMPLETED, FAILED, CANCELLED, NODE_FAIL, TIMEOUT (comma-separated), got \(String(name).debugDescription)")
                    }
                    return state
                }
            }
            if let since = q["since"].map(String.init) { query.since = try numberParam(since, "since", default: 0) }
            if let until = q["until"].map(String.init) { query.until = try numberParam(until, "until", default: 0) }
            if let node = q["node"].map(String.init) {
                guard SafeName.isValid(node) else { throw HTTPError(.badRequest, message: "node must be a node name, got \(node.debugDescription)") }
                query.node = node
            }
            if let name = q["name"].map(String.init) { query.name = String(name.prefix(1024)) }
            return try json(try state.history(query, policy: await state.policyNow))
        }
        router.get("/v1/report") { request, context in
            let q = request.uri.queryParameters
            let until = try numberParam(q["until"].map(String.init), "until", default: Date().timeIntervalSince1970)
            let since = try numberParam(q["since"].map(String.init), "since", default: until - 30 * 86_400)
            let byText = q["by"].map(String.init) ?? "user"
            guard let by = ReportGrouping(rawValue: byText) else {
                throw HTTPError(.badRequest, message: "by must be user, account, node or gpu-type, got \(byText.debugDescription)")
            }
            let users = try historyUsers(q["user"].map(String.init), context.user)
            return try json(try state.report(since: since, until: until, by: by, users: users, policy: await state.policyNow))
        }
        router.get("/v1/nodes") { _, _ in
            try json(await state.nodeInfos())
        }

        // Users and nodes (admins only)
        router.post("/v1/admin/users") { request, context in
            guard context.user?.admin == true else { throw HTTPError(.forbidden, message: "only an admin can add users") }
            let body = try await request.decode(as: AddUserRequest.self, context: context)
            let token = try credentials.addUser(body.name, admin: body.admin ?? false)
            logger.info("user added", metadata: ["user": "\(body.name)", "admin": "\(body.admin ?? false)", "by": "\(context.user?.name ?? "?")"])
            return try json(AddUserResponse(name: body.name, token: token, admin: body.admin ?? false), status: .created)
        }
        router.get("/v1/admin/users") { _, context in
            guard context.user?.admin == true else { throw HTTPError(.forbidden, message: "only an admin can list users") }
            return try json(credentials.users().map { AddUserResponse(name: $0.name, token: nil, admin: $0.admin) })
        }
        router.put("/v1/admin/accounts/{name}") { request, context in
            guard context.user?.admin == true else { throw HTTPError(.forbidden, message: "only an admin can set accounts") }
            let body = try await request.decode(as: PolicySettings.self, context: context)
            try await state.setAccount(context.parameters.get("name") ?? "", body)
            return try json(await state.policyReport())
        }
        router.put("/v1/admin/policy/users/{name}") { request, context in
            guard context.user?.admin == true else { throw HTTPError(.forbidden, message: "only an admin can set a user's share and limits") }
            let body = try await request.decode(as: PolicySettings.self, context: context)
            try await state.setUserPolicy(context.parameters.get("name") ?? "", body)
            return try json(await state.policyReport())
        }
        router.get("/v1/admin/policy") { _, context in
            guard context.user?.admin == true else { throw HTTPError(.forbidden, message: "only an admin can read the policy") }
            return try json(await state.policyReport())
        }
        router.post("/v1/admin/nodes/{id}/drain") { request, context in
            guard let admin = context.user, admin.admin else { throw HTTPError(.forbidden, message: "only an admin can drain nodes") }
            let body = try await request.decode(as: DrainRequest.self, context: context)
            let id = context.parameters.get("id") ?? ""
            guard let info = try await state.drainNode(id, reason: body.reason ?? "", by: admin.name) else {
                throw HTTPError(.notFound, message: "no node \(id)")
            }
            return try json(info)
        }
        router.post("/v1/admin/nodes/{id}/resume") { _, context in
            guard let admin = context.user, admin.admin else { throw HTTPError(.forbidden, message: "only an admin can resume nodes") }
            let id = context.parameters.get("id") ?? ""
            guard let info = try await state.resumeNode(id, by: admin.name) else { throw HTTPError(.notFound, message: "no node \(id)") }
            return try json(info)
        }
        router.delete("/v1/admin/nodes/{id}") { _, context in
            guard let admin = context.user, admin.admin else { throw HTTPError(.forbidden, message: "only an admin can remove nodes") }
            let id = context.parameters.get("id") ?? ""
            // The credential first: once it is gone, nothing can speak for the node while it is being removed.
            let hadCredential = try credentials.forgetNode(id)
            let known = try await state.removeNode(id, by: admin.name)
            guard known || hadCredential else { throw HTTPError(.notFound, message: "no node \(id)") }
            logger.info("node credential forgotten", metadata: ["node": "\(id)", "by": "\(admin.name)"])
            return try json(["status": "removed"])
        }

        // Agents. The node comes from the agent's credential, never from what the request says.
        router.post("/v1/agent/register") { request, context in
            let body = try await decodeAgentMessage(request, context, as: RegisterRequest.self, logger: logger)
            if let error = body.validationError() { throw error }
            guard case .bootstrap? = context.agent else {
                _ = try context.node(named: body.nodeId)
                return try json(try await state.register(body, peerAddress: context.peerAddress))
            }
            // The cluster secret enrols a node id once; the node is then given its own credential.
            let credential: String
            do { credential = try credentials.enroll(body.nodeId) } catch {
                logger.warning("refused to enrol a node with the cluster secret", metadata: ["node": "\(body.nodeId)",
                               "peer": "\(context.peerAddress ?? "?")", "reason": "\(error)"])
                throw error
            }
            do {
                var answer = try await state.register(body, peerAddress: context.peerAddress)
                answer.credential = credential
                logger.info("node enrolled", metadata: ["node": "\(body.nodeId)", "peer": "\(context.peerAddress ?? "?")"])
                return try json(answer)
            } catch {
                _ = try? credentials.forgetNode(body.nodeId)
                throw error
            }
        }
        router.post("/v1/agent/sync") { request, context in
            let body = try await decodeAgentMessage(request, context, as: SyncRequest.self, logger: logger)
            _ = try context.node(named: body.nodeId)
            let answer = try await state.sync(body)
            return answer.isEmpty ? emptySyncAnswer() : try json(answer)
        }
        router.post("/v1/agent/deregister") { request, context in
            let body = try await request.decode(as: DeregisterRequest.self, context: context)
            _ = try context.node(named: body.nodeId)
            try await state.deregister(body)
            return try json(["status": "ok"])
        }
        router.post("/v1/agent/output") { request, context in
            let node = try context.node()
            let q = request.uri.queryParameters
            guard let jobText = q["job"].map(String.init), let id = JobID(jobText) else {
                throw HTTPError(.badRequest, message: "job must be 8 hex digits, or ID_N for an array task")
            }
            let rank = try intParam(q["rank"].map(String.init), "rank", default: 0, range: 0...100_000)
            let stream = try streamParam(q["stream"].map(String.init))
            let offset = try Int64(intParam(q["offset"].map(String.init), "offset", default: 0, range: 0...Int.max))
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            guard let size = try await state.appendOutput(node: node, job: id, rank: rank, stream: stream, offset: offset,
                                                          bytes: Array(buffer.readableBytesView)) else {
                throw HTTPError(.notFound, message: "no part \(rank) of job \(id) on node \(node)")
            }
            return try json(OutputAck(size: size))
        }
        return router
    }

    /// Whose history a request may read: an admin's, anyone's (`user=` narrows it; `user=*` or none: everyone); anyone
    /// else's, their own (`user=` naming another is refused). No users configured (no tokens): everyone's.
    static func historyUsers(_ asked: String?, _ user: Credentials.User?) throws -> [String]? {
        if asked == "*", let user, !user.admin { throw HTTPError(.forbidden, message: "only an admin may read everyone's history") }
        let names = asked.flatMap { $0 == "*" ? nil : $0.split(separator: ",").map(String.init) }
        for name in names ?? [] where !SafeName.isValid(name) {
            throw HTTPError(.badRequest, message: "user must be user names (comma-separated), got \(name.debugDescription)")
        }
        guard let user, !user.admin else { return names }
        if let names, names != [user.name] {
            throw HTTPError(.forbidden, message: "only an admin may read other users' history")
        }
        return [user.name]
    }

    static func jobID(_ context: MasterContext) throws -> JobID {
        let text = context.parameters.get("id") ?? ""
        guard let id = JobID(text) else {
            throw HTTPError(.badRequest, message: "job id must be 8 hex digits (or ID_N for an array task), got \(text.debugDescription)")
        }
        return id
    }

    static func intParam(_ text: String?, _ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw HTTPError(.badRequest, message: "\(name) must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    /// A finite number, or the default when absent.
    static func numberParam(_ text: String?, _ name: String, default value: Double) throws -> Double {
        guard let text else { return value }
        guard let n = Double(text), n.isFinite else {
            throw HTTPError(.badRequest, message: "\(name) must be a number, got \(text.debugDescription)")
        }
        return n
    }

    /// `offsets` of a follow request: byte offsets, comma-separated, one per stream (rank 0's stdout and stderr, then
    /// rank 1's...).
    static func offsetsParam(_ text: String?) throws -> [Int64] {
        guard let text, !text.isEmpty else { return [] }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        let offsets = parts.compactMap { Int64($0) }.filter { $0 >= 0 }
        guard offsets.count == parts.count, offsets.count <= FollowLimits.maxOffsets else {
            throw HTTPError(.badRequest, message: "offsets must be at most \(FollowLimits.maxOffsets) byte offsets (whole numbers, 0 or more), comma-separated: rank 0's stdout, rank 0's stderr, rank 1's stdout...")
        }
        return offsets
    }

    static func streamParam(_ text: String?) throws -> StreamName {
        guard let text else { return .stdout }
        guard let stream = StreamName(rawValue: text) else { throw HTTPError(.badRequest, message: "stream must be stdout or stderr") }
        return stream
    }

    static func page(_ html: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    static func text(_ body: String) -> Response { text(ByteBuffer(string: body)) }

    static func text(_ body: [UInt8]) -> Response { text(ByteBuffer(bytes: body)) }

    static func text(_ body: ByteBuffer) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    /// `json(SyncResponse())`, encoded once: most syncs bring the agent nothing (every node, every few seconds), and
    /// encoding even an empty answer was 3 % of the master's CPU with 1,000 agents.
    static let emptySyncBody = ByteBuffer(bytes: (try? encoder.encode(SyncResponse())) ?? Data())

    static func emptySyncAnswer() -> Response { json(buffer: emptySyncBody) }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        json(bytes: try encoder.encode(value), status: status)
    }

    /// An answer whose JSON is already made (encoded elsewhere, or written as bytes).
    static func json(bytes: some Sequence<UInt8>, status: HTTPResponse.Status = .ok) -> Response {
        json(buffer: ByteBuffer(bytes: bytes), status: status)
    }

    static func json(buffer: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: buffer))
    }
}

/// Turns the master's own errors into JSON answers: a refused request is a 400, a store failure a 503.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = MasterContext

    func handle(_ request: Request, context: MasterContext, next: (Request, MasterContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as RequestError {
            throw HTTPError(.badRequest, message: error.message)
        } catch let error as StoreError {
            context.logger.error("store failure: \(error.message)")
            throw HTTPError(.serviceUnavailable, message: error.message)
        } catch let error as OwnershipError {
            throw HTTPError(.forbidden, message: error.message)
        } catch let error as CredentialError {
            switch error {
            case .badName: throw HTTPError(.badRequest, message: error.description)
            case .nodeEnrolled, .wrongNode, .needsNodeCredential: throw HTTPError(.forbidden, message: error.description)
            case .store, .unusableSecret:
                context.logger.error("store failure: \(error)")
                throw HTTPError(.serviceUnavailable, message: error.description)
            }
        } catch is NIOTooManyBytesError {
            throw HTTPError(.contentTooLarge, message: "the request body is over the \(context.maxUploadSize >> 20) MiB limit")
        } catch let error as HTTPError where error.body == nil {
            // Hummingbird's own refusals (no such route, body too large) get a message like every other error.
            switch error.status {
            case .notFound:
                throw HTTPError(.notFound, message: "no such endpoint: \(request.method) \(request.uri.path) (the API is under /v1; see docs/openapi.yaml)")
            case .contentTooLarge:
                throw HTTPError(.contentTooLarge, message: "the request body is over the \(context.maxUploadSize >> 20) MiB limit")
            default:
                throw HTTPError(error.status, message: error.status.reasonPhrase)
            }
        }
    }
}

extension APIRouter {
    /// An agent's register or sync: an agent too old or too new for this master gets one line saying which to upgrade
    /// (409), not a decode error. The message is read once; only one that does not decode is read again, for just its
    /// version (`AgentProtocol.Envelope`), so that a changed message of another protocol still gets that line.
    static func decodeAgentMessage<T: AgentProtocol.Versioned>(_ request: Request, _ context: MasterContext, as type: T.Type,
                                                                logger: Logger) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        func refuse(_ version: Int?, _ release: String?) throws {
            guard let refusal = AgentProtocol.refusal(agentProtocol: version, agentRelease: release) else { return }
            logger.warning("refused an agent of another protocol", metadata: ["node": "\(context.agent.map { "\($0)" } ?? "?")",
                           "peer": "\(context.peerAddress ?? "?")", "reason": "\(refusal)"])
            throw HTTPError(.conflict, message: refusal)
        }
        let message: T
        do {
            message = try await Request(head: request.head, body: .init(buffer: buffer)).decode(as: type, context: context)
        } catch {
            if let envelope = try? JSONDecoder().decode(AgentProtocol.Envelope.self, from: buffer) {
                try refuse(envelope.protocolVersion, envelope.mgpuVersion)
            }
            throw error
        }
        try refuse(message.protocolVersion, message.mgpuVersion)
        return message
    }
}
