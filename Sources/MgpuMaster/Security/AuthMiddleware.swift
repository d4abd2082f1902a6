import Hummingbird
import Logging

/// Agents present the cluster secret (to enrol a new node) or their node credential on `/v1/agent/*`; everything
/// else needs a user token in the `Authorization: Bearer` header, never in a URL (addresses end up in browser
/// history and proxy logs). The dashboard's pages carry no data and are open; their requests carry the token.
/// `/v1/signin` is open too: it exchanges a one-time code for a token. A refused request gets 401 and one log
/// line. An empty or malformed token matches nothing.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = MasterContext
    let credentials: Credentials
    let logger: Logger

    func handle(_ request: Request, context: MasterContext, next: (Request, MasterContext) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if path == "/v1/health" || path == "/" || path.hasPrefix("/jobs/") || path == "/v1/signin" || path == "/favicon.ico" { return try await next(request, context) }
        let token = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        if path.hasPrefix("/v1/agent/") {
            guard let token, let agent = credentials.agent(token: token) else {
                logger.warning("refused an agent without the cluster secret or a node credential",
                               metadata: ["path": "\(path)", "peer": "\(context.peerAddress ?? "?")"])
                throw HTTPError(.unauthorized, message: "agents must present the cluster secret (to enrol: mgpu node --token-file STATE_DIR/cluster.secret, or MGPU_TOKEN) or their node credential")
            }
            var context = context
            context.agent = agent
            return try await next(request, context)
        }
        guard let token, let user = credentials.user(token: token) else {
            logger.warning("refused a request without a valid user token", metadata: ["path": "\(path)", "peer": "\(context.peerAddress ?? "?")"])
            throw HTTPError(.unauthorized, message: token == nil
                ? "no token: set MGPU_TOKEN or ~/.config/mgpu/token (an admin makes one with `mgpu admin user add NAME`)"
                : "the master does not know this token (ask an admin for one: `mgpu admin user add NAME`)")
        }
        var context = context
        context.user = user
        return try await next(request, context)
    }
}
