import NIOCore
import NIOSSL
import Synchronization
import NIOHTTP1
import NIOPosix

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

    public var description: String {
        switch self {
        case let .unreachable(host, port, reason): "cannot reach the mgpu master at \(host):\(port) (\(reason))"
        case let .timedOut(host, port, seconds): "no answer from the mgpu master at \(host):\(port) within \(Int(seconds)) s"
        case let .closed(host, port): "the mgpu master at \(host):\(port) closed the connection before answering"
        case let .failed(host, port, reason): "the request to the mgpu master at \(host):\(port) failed (\(reason))"
        }
    }
}

/// A minimal HTTP/1.1 client over SwiftNIO: one connection per request, closed after the answer.
/// No connection is assumed to stay healthy, so every call can fail and be retried by its caller.
public struct HTTPClient: Sendable {
    public let host: String
    public let port: Int
    public var connectTimeout: Double
    /// Sent as `Authorization: Bearer` (a user token, or an agent's cluster secret).
    public var token: String?
    /// HTTPS when set.
    public var tls: ClientTLS?

    public init(host: String, port: Int, connectTimeout: Double = 5, token: String? = nil, tls: ClientTLS? = nil) {
        self.host = host
        self.port = port
        self.connectTimeout = connectTimeout
        self.token = token
        self.tls = tls
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
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        let tls = self.tls, host = self.host
        // The first error the connection saw (a failed TLS handshake), which says more than the "closed channel" a
        // write then gets.
        let firstError = FirstError()
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
                // (NIO sets TCP_NODELAY itself. `.socketOption(.tcp_nodelay)` would mean SOL_SOCKET level 1, SO_DEBUG, which
                // only root may set: every other user's connection failed.)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(try tls.handler(host: host)) }
                        try channel.pipeline.syncOperations.addHandler(ErrorRecorder(firstError))
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw TransportError.unreachable(host: host, port: port, reason: Self.describe(error))
        }
        let port = self.port, token = self.token
        return try await withThrowingTaskGroup(of: HTTPResult?.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                    head.headers.add(name: "Host", value: "\(host):\(port)")
                    head.headers.add(name: "Connection", value: "close")
                    if let token { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
                    if let body {
                        head.headers.add(name: "Content-Type", value: contentType)
                        head.headers.add(name: "Content-Length", value: String(body.count))
                    } else if method == .POST || method == .PUT {
                        head.headers.add(name: "Content-Length", value: "0")
                    }
                    try await outbound.write(.head(head))
                    if let body, !body.isEmpty { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
                    try await outbound.write(.end(nil))
                    var result = HTTPResult(status: 0, headers: [], body: [])
                    for try await part in inbound {
                        switch part {
                        case .head(let h):
                            result.status = Int(h.status.code)
                            result.headers = h.headers.map { ($0.name, $0.value) }
                        case .body(var buffer):
                            result.body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
                        case .end:
                            return result
                        }
                    }
                    throw TransportError.closed(host: host, port: port)
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
                return nil
            }
            defer { group.cancelAll() }
            do {
                if let first = try await group.next(), let result = first { return result }
            } catch let error as TransportError {
                throw firstError.value.map { TransportError.failed(host: host, port: port, reason: Self.describe($0)) } ?? error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw TransportError.failed(host: host, port: port, reason: Self.describe(firstError.value ?? error))
            }
            channel.channel.close(promise: nil)
            throw TransportError.timedOut(host: host, port: port, seconds: timeout)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let ssl = error as? NIOSSLError {
            switch ssl {
            case .handshakeFailed(let inner):
                let text = "\(inner)"
                if text.contains("CERTIFICATE_VERIFY_FAILED") {
                    return "TLS: the master's certificate is not trusted (give its CA with --ca-cert or MGPU_CA_CERT)"
                }
                if text.contains("WRONG_VERSION_NUMBER") { return "TLS: the master does not speak TLS (leave out --ca-cert/--tls)" }
                return "TLS handshake failed: \(text.prefix(160))"
            default: return "TLS: \(ssl)"
            }
        }
        if let ssl = error as? BoringSSLError { return "TLS: \(ssl)".prefix(200).description }
        let text = String(describing: error)
        if text.contains("connectTimeout") { return "connection timed out" }
        if text.contains("refused") || text.contains("111") { return "connection refused" }
        if let range = text.range(of: "reason: ") { return String(text[range.upperBound...].prefix(80)) }
        return String(text.prefix(120))
    }
}

/// Holds the first error a connection's pipeline reported.
final class FirstError: Sendable {
    private let box = Mutex<(any Error)?>(nil)
    var value: (any Error)? { box.withLock { $0 } }
    func record(_ error: any Error) { box.withLock { if $0 == nil { $0 = error } } }
}

/// Records the first error that passes through (before the HTTP handlers), and passes it on.
final class ErrorRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let first: FirstError
    init(_ first: FirstError) { self.first = first }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        first.record(error)
        context.fireErrorCaught(error)
    }
}
