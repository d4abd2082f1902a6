import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

extension EndToEndTests {
/// The command line's HTTP client (`oneShot`: a connection per request, blocking calls on a thread of its own, NIO's
/// HTTP/1.1 codec in an EmbeddedChannel) against a real master, and against sockets that misbehave.
@Suite struct OneShotClientTests {
    @Test func answersMatchThePooledClients() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let token = try #require(cluster.token)
        let oneShot = MasterClient(host: "127.0.0.1", port: cluster.port, token: token, oneShot: true)
        let pooled = MasterClient(host: "127.0.0.1", port: cluster.port, token: token)
        // A body (the submission), a JSON answer, and one big enough to come in many reads (over 64 KiB).
        let long = String(repeating: "x", count: 300)
        let template = JobSpec(name: nil, user: unixUser, command: "sleep 30 # \(long)", workdir: cluster.dir, environment: ["PATH": "/usr/bin:/bin"],
                               request: ResourceRequest(gpusPerNode: 1))
        // The requests of one process go over one connection (the master counts those it accepts).
        func opened() async throws -> Int {
            let text = String(decoding: try await pooled.http.request(.GET, "/metrics").body, as: UTF8.self)
            return text.split(separator: "\n").first { $0.hasPrefix("mgpu_http_connections_opened_total ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) } ?? -1
        }
        let before = try await opened()
        let ids = try await oneShot.submit(template: template, commands: (0..<400).map { "sleep 30 # \($0) \(long)" })
        #expect(ids.count == 400)
        let big = try await oneShot.queueJSON()
        #expect(big.count > 128 * 1024, "a body of many reads: \(big.count) bytes")
        let queue = try JSONDecoder().decode(QueueResponse.self, from: Data(big))
        #expect(Set(queue.jobs.map(\.id)).isSuperset(of: ids))
        let viaPool = try await pooled.queue()
        #expect(viaPool.jobs.map(\.id) == queue.jobs.map(\.id))
        #expect(try await oneShot.job(ids[7].rawValue).command == "sleep 30 # 7 \(long)")
        #expect(try await oneShot.queueTable().contains(ids[0].rawValue))
        #expect(try await opened() - before == 1, "five requests, one connection")
        // An error answer: its status and the master's message.
        do {
            _ = try await oneShot.job("DEADBEEF")
            Issue.record("no such job")
        } catch let error as APIError {
            #expect(error.status == 404)
            #expect(error.message.contains("DEADBEEF"))
        }
        // Cancelled (a POST with a body): the master has them ended.
        let cancelled = try await oneShot.cancel(ids.map(\.rawValue))
        #expect(cancelled.results.filter { [.cancelled, .cancelling].contains($0.outcome) }.count == 400)
        #expect(try await pooled.job(ids[399].rawValue).state == .cancelled)
    }

    /// A cancelled long-poll ends at once (its socket is shut down), not when the master answers.
    @Test func cancellingALongPollEndsItAtOnce() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 1])
        defer { cluster.stop() }
        let id = try await cluster.submit(["sleep 60"])
        try await cluster.waitForState(id, [.running])
        let client = MasterClient(host: "127.0.0.1", port: cluster.port, token: cluster.token, oneShot: true)
        let poll = Task { try await client.output(job: id.rawValue, rank: 0, stream: .stdout, offset: 0, wait: 30) }
        try await Task.sleep(for: .milliseconds(300))
        let start = Date()
        poll.cancel()
        let result = await poll.result
        #expect(Date().timeIntervalSince(start) < 2, "ended by the cancellation, not by the 30 s wait")
        #expect(throws: CancellationError.self) { try result.get() }
    }

    @Test func transportFailuresAreTyped() async throws {
        // Nothing listens: refused.
        let closed = try Listener()
        let port = closed.port
        closed.close()
        await expectTransport(port: port, timeout: 5) {
            guard case .unreachable(_, _, let reason) = $0 else { return false }
            return reason == "connection refused"
        }
        // Accepts, never answers: timed out after the request's timeout.
        let silent = try Listener()
        defer { silent.close() }
        let start = Date()
        await expectTransport(port: silent.port, timeout: 0.5) {
            if case .timedOut = $0 { return true }
            return false
        }
        #expect(Date().timeIntervalSince(start) < 3)
        // Accepts, reads the request and hangs up: closed before answering.
        let rude = try Listener()
        defer { rude.close() }
        let hangUp = Thread { rude.acceptAndClose() }
        hangUp.start()
        await expectTransport(port: rude.port, timeout: 5) {
            if case .closed = $0 { return true }
            return false
        }
    }

    /// A kept connection the server has closed meanwhile (its idle timeout, a restart) is not used: the next request
    /// goes over a new one. The server here answers one request on each connection and keeps it open until told.
    @Test func aKeptConnectionTheServerClosedIsReplaced() async throws {
        let server = try Listener()
        defer { server.close() }
        let closeNow = DispatchSemaphore(value: 0), closed = DispatchSemaphore(value: 0)
        let serving = Thread {
            for n in 1...2 {
                let connection = server.answerOnce(body: "answer \(n)")
                closeNow.wait()
                // As an idle timeout closes it: the client's kept connection reaches its end.
                shutdown(connection, Int32(SHUT_RDWR))
                Glibc.close(connection)
                closed.signal()
            }
        }
        serving.start()
        let http = HTTPClient(host: "127.0.0.1", port: server.port, oneShot: true)
        let first = try await http.request(.POST, "/v1/jobs", body: Array("{}".utf8), timeout: 5)
        #expect(String(decoding: first.body, as: UTF8.self) == "answer 1")
        closeNow.signal()
        closed.wait()
        let second = try await http.request(.POST, "/v1/jobs", body: Array("{}".utf8), timeout: 5)
        #expect(String(decoding: second.body, as: UTF8.self) == "answer 2", "sent over a new connection")
        closeNow.signal()
        closed.wait()
    }

    func expectTransport(port: Int, timeout: Double, _ matches: (TransportError) -> Bool) async {
        let http = HTTPClient(host: "127.0.0.1", port: port, oneShot: true)
        do {
            _ = try await http.request(.POST, "/v1/jobs", body: Array("{}".utf8), timeout: timeout)
            Issue.record("an answer from port \(port)")
        } catch let error as TransportError {
            #expect(matches(error), "\(error)")
            #expect(error.description.contains("127.0.0.1:\(port)"))
        } catch {
            Issue.record("not a TransportError: \(error)")
        }
    }
}
}

/// A TCP listener on an ephemeral loopback port that never answers by itself.
private final class Listener: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0, listen(fd, 8) == 0 else { throw TestFailure("cannot listen: \(errno)") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Takes one connection, reads what comes, and closes it.
    func acceptAndClose() {
        let client = accept(fd, nil, nil)
        guard client >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = read(client, &buffer, buffer.count)
        Glibc.close(client)
    }

    /// Takes one connection, reads a request and answers it with `body` over HTTP/1.1, leaving the connection open
    /// (as a server that keeps connections does); returns it.
    func answerOnce(body: String) -> Int32 {
        let client = accept(fd, nil, nil)
        guard client >= 0 else { return client }
        var buffer = [UInt8](repeating: 0, count: 65536)
        _ = read(client, &buffer, buffer.count)
        let answer = Array("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        _ = answer.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
        return client
    }

    func close() { Glibc.close(fd) }
}
