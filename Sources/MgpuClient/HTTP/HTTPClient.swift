import AsyncHTTPClient
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// One HTTP/1.1 response, fully read.
public struct HTTPResult: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// Why a request failed before an HTTP answer came back.
public enum TransportError: Error, CustomStringConvertible {
    case unreachable(host: String, port: Int, reason: String)
    case timedOut(host: String, port: Int, seconds: Double)
    case closed(host: String, port: Int)
    case failed(host: String, port: Int, reason: String)

    /// A failed connect, by its errno.
    static func unreachable(errno code: Int32, host: String, port: Int) -> TransportError {
        switch code {
        case ECONNREFUSED: .unreachable(host: host, port: port, reason: "connection refused")
        case ENETUNREACH, EHOSTUNREACH: .unreachable(host: host, port: port, reason: "no route to the host")
        case ETIMEDOUT: .unreachable(host: host, port: port, reason: "connection timed out")
        default: .unreachable(host: host, port: port, reason: String(cString: strerror(code)))
        }
    }

    public var description: String {
        switch self {
        case let .unreachable(host, port, reason): "cannot reach the mgpu master at \(host):\(port) (\(reason))"
        case let .timedOut(host, port, seconds): "no answer from the mgpu master at \(host):\(port) within \(Int(seconds)) s"
        case let .closed(host, port): "the mgpu master at \(host):\(port) closed the connection before answering"
        case let .failed(host, port, reason): "the request to the mgpu master at \(host):\(port) failed (\(reason))"
        }
    }
}

/// The HTTP client of agents and the CLI, on AsyncHTTPClient: connections are kept and reused across requests (one
/// pool per process and TLS setting, `ClientPool`), every request has a deadline, and failures are typed.
public struct HTTPClient: Sendable {
    public let host: String
    public let port: Int
    public var connectTimeout: Double
    /// Sent as `Authorization: Bearer` (a user token, a node credential, or the cluster secret to enrol).
    public var token: String?
    /// HTTPS when set.
    public var tls: ClientTLS?
    /// A command-line client's: plain-HTTP requests with blocking calls on a thread of their own, over a connection
    /// kept for the process's next request (`OneShotHTTP`), instead of starting AsyncHTTPClient's event loops and pool.
    public var oneShot: Bool

    public init(host: String, port: Int, connectTimeout: Double = 5, token: String? = nil, tls: ClientTLS? = nil,
                oneShot: Bool = false) {
        self.host = host
        self.port = port
        self.connectTimeout = connectTimeout
        self.token = token
        self.tls = tls
        self.oneShot = oneShot
    }

    public var baseURL: String { "\(tls == nil ? "http" : "https")://\(authority)" }

    /// `host:port`, an IPv6 address in brackets (a URL's and a Host header's form).
    var authority: String {
        let name = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(name):\(port)"
    }

    /// Sends one request. A GET (idempotent) that fails in transport is tried once more.
    public func request(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil,
                        contentType: String = "application/json", timeout: Double = 30) async throws -> HTTPResult {
        do {
            return try await requestOnce(method, path, body: body, contentType: contentType, timeout: timeout)
        } catch let error as TransportError where method == .GET {
            if case .timedOut = error { throw error }
            try await Task.sleep(for: .milliseconds(50))
            return try await requestOnce(method, path, body: body, contentType: contentType, timeout: timeout)
        }
    }

    func requestOnce(_ method: HTTPMethod, _ path: String, body: [UInt8]?, contentType: String, timeout: Double) async throws -> HTTPResult {
        if oneShot && tls == nil {
            var headers: [(String, String)] = []
            if let token { headers.append(("Authorization", "Bearer \(token)")) }
            if body != nil { headers.append(("Content-Type", contentType)) }
            return try await OneShotHTTP.perform(.init(method: method, host: host, port: port, authority: authority, path: path,
                                                       headers: headers, body: body, connectTimeout: connectTimeout, timeout: timeout))
        }
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType)
            request.body = .bytes(ByteBuffer(bytes: body))
        } else if method == .POST || method == .PUT {
            request.headers.add(name: "Content-Length", value: "0")
        }
        let client = ClientPool.client(tls: tls, connectTimeout: connectTimeout)
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
            let bytes = try await response.body.collect(upTo: 1 << 30)
            return HTTPResult(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                              body: Array(bytes.readableBytesView))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw transportError(error, timeout: timeout)
        }
    }

    /// What went wrong, from the error's type (AsyncHTTPClient's, NIO's, NIOSSL's).
    func transportError(_ error: any Error, timeout: Double) -> TransportError {
        switch error {
        case let e as HTTPClientError:
            switch e {
            case .deadlineExceeded, .readTimeout: return .timedOut(host: host, port: port, seconds: timeout)
            case .connectTimeout: return .unreachable(host: host, port: port, reason: "connection timed out")
            case .remoteConnectionClosed: return .closed(host: host, port: port)
            default: return .failed(host: host, port: port, reason: "\(e)")
            }
        case let e as NIOSSLError:
            return .unreachable(host: host, port: port, reason: Self.describe(e))
        case let e as NIOSSLExtraError where e == .failedToValidateHostname:
            return .unreachable(host: host, port: port, reason: "TLS: the master's certificate does not name \(host)")
        case let e as NIOConnectionError:
            return transportError(e.connectionErrors.first?.error ?? e.dnsAError ?? e.dnsAAAAError ?? e, timeout: timeout)
        case let e as IOError:
            return .unreachable(errno: e.errnoCode, host: host, port: port)
        case is SocketAddressError:
            return .unreachable(host: host, port: port, reason: "cannot resolve \(host)")
        default:
            return .failed(host: host, port: port, reason: String("\(error)".prefix(160)))
        }
    }

    /// A failed TLS handshake in words. BoringSSL says why only in its error strings.
    static func describe(_ error: NIOSSLError) -> String {
        guard case .handshakeFailed(let inner) = error else { return "TLS: \(error)" }
        let text = "\(inner)"
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "TLS: the master's certificate is not trusted (give its CA with --ca-cert or MGPU_CA_CERT)"
        }
        if text.contains("WRONG_VERSION_NUMBER") { return "TLS: the master does not speak TLS (leave out --ca-cert/--tls)" }
        return "TLS handshake failed: \(text.prefix(160))"
    }
}

/// One AsyncHTTPClient per TLS setting and connect timeout, for the life of the process: its pool keeps connections
/// to the master open between requests (an agent's syncs, a client's long-polls). Never shut down: they live as long as
/// the process does.
enum ClientPool {
    private static let clients = Mutex<[String: AsyncHTTPClient.HTTPClient]>([:])

    static func client(tls: ClientTLS?, connectTimeout: Double) -> AsyncHTTPClient.HTTPClient {
        let key = "\(tls?.key ?? "plain") \(connectTimeout)"
        return clients.withLock { clients in
            if let client = clients[key] { return client }
            var configuration = AsyncHTTPClient.HTTPClient.Configuration(
                tlsConfiguration: tls?.configuration, redirectConfiguration: .disallow,
                timeout: .init(connect: .milliseconds(Int64(connectTimeout * 1000))), decompression: .disabled)
            configuration.httpVersion = .http1Only
            // Shorter than the master's idle timeout (60 s), so the master never closes a connection as it is reused.
            configuration.connectionPool.idleTimeout = .seconds(30)
            // A failed connection attempt fails the request at once: mgpu's callers retry with their own policy (an
            // agent's backoff is capped at 10 s), where the pool's own backoff grows with every failure of every
            // caller, to a minute.
            configuration.connectionPool.retryConnectionEstablishment = false
            let client = AsyncHTTPClient.HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }
}
