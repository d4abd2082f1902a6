import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization

/// A command-line client's request over plain HTTP: blocking socket calls on a thread of its own, and NIO's own
/// HTTP/1.1 request encoder and response decoder driven in an `EmbeddedChannel` (no event-loop threads, no connection
/// pool: a CLI process makes one or a few requests and exits, and starting those cost more than the request). The
/// connection is kept for the process's next request (`idle`).
/// Agents, long-lived, and HTTPS keep AsyncHTTPClient.
enum OneShotHTTP {
    struct Request {
        var method: HTTPMethod
        var host: String
        var port: Int
        /// For the Host header (`HTTPClient.authority`).
        var authority: String
        var path: String
        var headers: [(String, String)]
        var body: [UInt8]?
        var connectTimeout: Double
        var timeout: Double
    }

    /// Performs `request` on a new thread; cancelling the task shuts the socket down, which ends the call at once.
    static func perform(_ request: Request) async throws -> HTTPResult {
        let socket = SocketBox()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResult, any Error>) in
                // A thread of its own, not the cooperative pool nor Dispatch's: a long-poll blocks it for up to a minute.
                Thread.detachNewThread {
                    continuation.resume(with: Result { try perform(request, socket: socket) })
                }
            }
        } onCancel: {
            socket.cancel()
        }
    }

    /// The socket of one request, so that a cancellation from another thread can shut it down.
    final class SocketBox: Sendable {
        private let state = Mutex<(fd: Int32, cancelled: Bool)>((-1, false))

        /// Records the socket; false when the request was cancelled already (the caller closes it).
        func set(_ fd: Int32) -> Bool {
            state.withLock { s in
                if s.cancelled { return false }
                s.fd = fd
                return true
            }
        }

        func clear() { state.withLock { $0.fd = -1 } }

        var isCancelled: Bool { state.withLock { $0.cancelled } }

        func cancel() {
            state.withLock { s in
                s.cancelled = true
                if s.fd >= 0 { _ = Glibc.shutdown(s.fd, Int32(SHUT_RDWR)) }
            }
        }
    }

    /// Connections kept open between the requests of one process, by host and port (at most two each: a command's
    /// requests come one after another, with at most its stdin's beside them). An srun made ten connections, each
    /// accepted and set up by the master, where two serve.
    static let idle = Mutex<[String: [Int32]]>([:])

    /// A kept connection to `key`'s server that is still open (a connection the server closed while it was kept,
    /// at its idle timeout or a restart, reads as ready: it is closed here), or nil.
    static func takeIdle(_ key: String) -> Int32? {
        while let fd = idle.withLock({ $0[key]?.popLast() }) {
            if !streamEnded(fd) { return fd }
            close(fd)
        }
        return nil
    }

    static func keepIdle(_ fd: Int32, _ key: String) {
        let kept = idle.withLock { idle in
            guard idle[key, default: []].count < 2 else { return false }
            idle[key, default: []].append(fd)
            return true
        }
        if !kept { close(fd) }
    }

    static func perform(_ request: Request, socket box: SocketBox) throws -> HTTPResult {
        let key = "\(request.host) \(request.port)"
        if let fd = takeIdle(key) {
            do {
                return try perform(request, on: fd, key: key, box: box)
            } catch ReuseFailure.closedBeforeAnswer {
                // The server closed the kept connection as the request went out (its idle timeout, or stopping):
                // nothing was answered, so the request goes again on a new connection. (Only a master that read it,
                // committed it and died before answering would see it twice.)
            }
        }
        let fd = try connect(try resolve(request.host, port: request.port), request: request)
        do {
            return try perform(request, on: fd, key: key, box: box)
        } catch ReuseFailure.closedBeforeAnswer {
            throw TransportError.closed(host: request.host, port: request.port)
        }
    }

    /// A kept connection that ended before a byte of the answer came.
    enum ReuseFailure: Error { case closedBeforeAnswer }

    /// One request on `fd`; the connection is kept for the next request when the answer leaves it open, else closed.
    static func perform(_ request: Request, on fd: Int32, key: String, box: SocketBox) throws -> HTTPResult {
        var keep = false
        defer {
            box.clear()
            if keep { keepIdle(fd, key) } else { close(fd) }
        }
        guard box.set(fd) else { throw CancellationError() }
        let deadline = now() + request.timeout

        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        do {
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.path)
            head.headers.add(name: "Host", value: request.authority)
            for (name, value) in request.headers { head.headers.add(name: name, value: value) }
            head.headers.add(name: "Content-Length", value: "\(request.body?.count ?? 0)")
            try channel.writeOutbound(HTTPClientRequestPart.head(head))
            if let body = request.body, !body.isEmpty {
                try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))))
            }
            try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        } catch {
            throw TransportError.failed(host: request.host, port: request.port, reason: "cannot encode the request: \(error)")
        }
        var out: [UInt8] = []
        while let data = try? channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data { out += buffer.readableBytesView }
        }
        do {
            try send(fd, out, request: request, deadline: deadline, box: box)
        } catch TransportError.closed {
            throw ReuseFailure.closedBeforeAnswer
        }

        var status = 0, headers: [(String, String)] = [], body: [UInt8] = [], ended = false, received = 0
        var version = HTTPVersion.http1_1
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while !ended {
            try wait(fd, for: Int16(POLLIN), request: request, deadline: deadline, box: box)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if box.isCancelled { throw CancellationError() }
                if received == 0 && errno == ECONNRESET { throw ReuseFailure.closedBeforeAnswer }
                throw TransportError.closed(host: request.host, port: request.port)
            }
            received += n
            if n == 0 {
                // The end of the stream ends a body that had no length.
                _ = try? channel.finish(acceptAlreadyClosed: true)
            } else {
                do { try channel.writeInbound(ByteBuffer(bytes: chunk[0..<n])) } catch {
                    throw TransportError.failed(host: request.host, port: request.port, reason: "a malformed answer: \(error)")
                }
            }
            while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head(let head):
                    status = Int(head.status.code)
                    headers = head.headers.map { ($0.name, $0.value) }
                    version = head.version
                    // Room for the whole body at once (a listing of 10,000 jobs is a megabyte).
                    if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > 0 {
                        body.reserveCapacity(min(length, 64 << 20))
                    }
                case .body(let buffer):
                    // Copied as one block (appending the buffer's view went through it a byte at a time).
                    buffer.withUnsafeReadableBytes { body.append(contentsOf: $0) }
                case .end:
                    ended = true
                }
            }
            if n == 0 && !ended {
                if box.isCancelled { throw CancellationError() }
                if received == 0 { throw ReuseFailure.closedBeforeAnswer }
                throw TransportError.closed(host: request.host, port: request.port)
            }
        }
        // Kept when the answer came whole, over HTTP/1.1, without `Connection: close`, and the stream is still open.
        let closes = headers.contains { $0.0.lowercased() == "connection" && $0.1.lowercased().contains("close") }
        keep = ended && received > 0 && version == .http1_1 && !closes && !box.isCancelled && !streamEnded(fd)
        return HTTPResult(status: status, headers: headers, body: body)
    }

    /// True when the server has closed `fd` (or sent more than was asked for): such a connection is not kept.
    static func streamEnded(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) != 0
    }

    /// The server's address, for a new connection (a command's later requests go over the kept one).
    static func resolve(_ host: String, port: Int) throws -> SocketAddress {
        do {
            // An address as it is (the usual 127.0.0.1 of `mgpu up`), without getaddrinfo's look at the interfaces.
            return try (try? SocketAddress(ipAddress: host, port: port)) ?? SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw TransportError.unreachable(host: host, port: port, reason: "cannot resolve \(host)")
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// A connected socket, or why not.
    static func connect(_ address: SocketAddress, request: Request) throws -> Int32 {
        let host = request.host, port = request.port
        let fd = Glibc.socket(Int32(address.protocol.rawValue), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw TransportError.failed(host: host, port: port, reason: String(cString: strerror(errno))) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = address.withSockAddr { Glibc.connect(fd, $0, socklen_t($1)) }
        if result != 0 && errno != EINPROGRESS {
            let code = errno
            close(fd)
            throw TransportError.unreachable(errno: code, host: host, port: port)
        }
        if result != 0 {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&p, 1, Int32(request.connectTimeout * 1000))
            if ready == 0 {
                close(fd)
                throw TransportError.unreachable(host: host, port: port, reason: "connection timed out")
            }
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length)
            if ready < 0 || code != 0 {
                close(fd)
                throw TransportError.unreachable(errno: ready < 0 ? errno : code, host: host, port: port)
            }
        }
        return fd
    }

    /// Waits until `fd` is ready for `events`, within the request's deadline.
    static func wait(_ fd: Int32, for events: Int16, request: Request, deadline: Double, box: SocketBox) throws {
        while true {
            let left = deadline - now()
            if left <= 0 { throw TransportError.timedOut(host: request.host, port: request.port, seconds: request.timeout) }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&p, 1, Int32(min(left, 3600) * 1000) + 1)
            if box.isCancelled { throw CancellationError() }
            if ready > 0 { return }
            if ready < 0 && errno != EINTR {
                throw TransportError.failed(host: request.host, port: request.port, reason: String(cString: strerror(errno)))
            }
        }
    }

    static func send(_ fd: Int32, _ bytes: [UInt8], request: Request, deadline: Double, box: SocketBox) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) {
                try wait(fd, for: Int16(POLLOUT), request: request, deadline: deadline, box: box)
                continue
            }
            if box.isCancelled { throw CancellationError() }
            throw TransportError.closed(host: request.host, port: request.port)
        }
    }
}
