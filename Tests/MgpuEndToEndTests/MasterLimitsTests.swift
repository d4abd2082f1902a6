import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

/// The master stays up for everyone when one client asks too much: requests built to expand, too many pending jobs,
/// endless input, idle and half-sent connections.
extension EndToEndTests {
    @Suite struct MasterLimitsTests {
        /// Enrols an in-process agent and syncs it every 50 ms until `stop`; returns the slowest answer.
        static func heartbeats(_ cluster: TestCluster, until stop: @escaping @Sendable () async -> Bool) async throws -> Task<Double, any Error> {
            let secret = try #require(cluster.read("state/cluster.secret")).trimmingCharacters(in: .whitespacesAndNewlines)
            let enrolled = try await MasterClient(host: "127.0.0.1", port: cluster.port, token: secret)
                .register(RegisterRequest(nodeId: "beat", incarnation: "i", gpus: [], cpuSlots: 0, advertiseAddress: nil))
            let agent = MasterClient(host: "127.0.0.1", port: cluster.port, token: try #require(enrolled.credential))
            return Task {
                var slowest = 0.0
                while await !stop() {
                    let start = Date()
                    _ = try await agent.sync(SyncRequest(nodeId: "beat", incarnation: "i", running: [], finished: [], wait: 0))
                    slowest = max(slowest, Date().timeIntervalSince(start))
                    try await Task.sleep(for: .milliseconds(50))
                }
                return slowest
            }
        }

        /// The master's count of connections it accepted (each scrape is one more).
        static func connectionsOpened(_ cluster: TestCluster) async throws -> Double {
            let text = String(decoding: try await cluster.client.http.request(.GET, "/metrics").body, as: UTF8.self)
            let line = text.split(separator: "\n").first { $0.hasPrefix("mgpu_http_connections_opened_total ") }
            return Double(line?.split(separator: " ").last ?? "") ?? 0
        }

        @Test func aRequestBuiltToExpandIsRefusedAtOnceWhileHeartbeatsGoOn() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let done = Flag()
            let beats = try await Self.heartbeats(cluster) { await done.value }
            // 120 KiB of environment (under the 128 KiB a job may carry) times 100,000 commands: a 10 MiB request that
            // would be 12 GB of jobs.
            var template = JobSpec(name: "x", user: "x", command: "-", workdir: "/tmp", environment: ["BIG": String(repeating: "e", count: 120 << 10)],
                                   request: ResourceRequest(gpusPerNode: 1))
            template.killGraceSeconds = 1
            let commands = (0..<100_000).map { "echo job number \($0) " + String(repeating: "x", count: 80) }
            let start = Date()
            await #expect(throws: APIError.self) { _ = try await cluster.client.submit(template: template, commands: commands) }
            let elapsed = Date().timeIntervalSince(start)
            do {
                _ = try await cluster.client.submit(template: template, commands: commands)
            } catch let error as APIError {
                #expect(error.status == 400 && error.message.contains("expands to") && error.message.contains("--max-request-bytes"), "\(error.message)")
            }
            // Large but fair: accepted, and committed outside the state actor while heartbeats go on.
            template.environment = ["SMALL": String(repeating: "e", count: 2048)]
            let accepted = try await cluster.client.submit(template: template, commands: Array(commands.prefix(5_000)))
            #expect(accepted.count == 5_000)
            await done.set()
            let slowest = try await beats.value
            print("refused a 12 GB expansion in \(String(format: "%.2f", elapsed)) s; slowest heartbeat meanwhile \(String(format: "%.3f", slowest)) s")
            #expect(elapsed < 5, "refused quickly (\(elapsed) s, debug build, request sent and decoded included)")
            #expect(slowest < 2, "heartbeats kept being answered (slowest \(slowest) s)")
            #expect(try await cluster.client.queue().jobs.count == 5_000, "nothing of the refused request was kept")
        }

        @Test func limitsOfOneUserNameTheFlagAndLeaveOthersAlone() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1],
                                                      master: ["--max-pending-per-user", "3", "--max-stdin-bytes", "1000"])
            defer { cluster.stop() }
            let user = try await cluster.mgpu(["admin", "user", "add", "daemon"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let holder = try await cluster.submit(["--gpus", "1", "sleep 60"])
            try await cluster.waitForState(holder, [.running])
            for _ in 0..<3 { _ = try await cluster.submit(["--gpus", "1", "true"], env: ["MGPU_TOKEN": user]) }
            let fourth = try await cluster.mgpu(["submit", "--gpus", "1", "true"], env: ["MGPU_TOKEN": user])
            #expect(fourth.status == 1 && fourth.stderr.contains("daemon has 3 pending jobs") && fourth.stderr.contains("--max-pending-per-user"),
                    "\(fourth.stderr)")
            #expect(fourth.stderr.split(separator: "\n").count == 1, "one line: \(fourth.stderr)")
            _ = try await cluster.submit(["--gpus", "1", "true"])  // another user is not held back

            // A job's environment and command over their limits: one line each, naming the flag.
            let bigEnv = try await cluster.mgpu(["submit", "true"], env: ["HUGE": String(repeating: "v", count: 130_000)])
            #expect(bigEnv.status == 1 && bigEnv.stderr.contains("--max-environment-bytes"), "\(bigEnv.stderr)")
            // (Words after -- are joined into one command: each word fits in an argument, their sum does not.)
            let bigCommand = try await cluster.mgpu(["submit", "--", "echo", String(repeating: "c", count: 70_000), String(repeating: "d", count: 70_000)])
            #expect(bigCommand.status == 1 && bigCommand.stderr.contains("--max-command-bytes"), "\(bigCommand.stderr)")

            // Input past --max-stdin-bytes is refused; what came before stays.
            try await cluster.client.cancel([holder.rawValue])
            var spec = JobSpec(name: "cat", user: "x", command: "cat > /dev/null", workdir: "/tmp", environment: [:],
                               request: ResourceRequest(gpusPerNode: 0), interactive: true)
            spec.killGraceSeconds = 1
            let interactive = try #require(try await cluster.client.submit([spec]).first)
            #expect(try await cluster.client.sendStdin(job: interactive.rawValue, offset: 0, bytes: Array(repeating: 65, count: 900), eof: false) == 900)
            await #expect(throws: APIError.self) {
                _ = try await cluster.client.sendStdin(job: interactive.rawValue, offset: 900, bytes: Array(repeating: 65, count: 200), eof: false)
            }
            _ = try await cluster.client.cancel([interactive.rawValue])
        }

        @Test func idleAndHalfSentConnectionsDoNotKeepOthersOut() async throws {
            // The default cap on connections (4,096); idle ones closed after 2 s.
            let cluster = try await TestCluster.start(agents: ["node001": 1], master: ["--idle-timeout", "2"])
            defer { cluster.stop() }
            raiseOwnFileLimit()
            // 1,000 connections that never send a byte, and some that send half a request and stop.
            var sockets = (0..<1_000).compactMap { _ in connectLoopback(cluster.port) }
            for fd in sockets.prefix(20) { _ = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"jo".withCString { write(fd, $0, strlen($0)) } }
            defer { sockets.forEach { close($0) } }
            #expect(sockets.count == 1_000)
            let start = Date()
            let id = try await cluster.submit(["--gpus", "0", "echo through"])
            let waited = Date().timeIntervalSince(start)
            try await cluster.waitForState(id, [.completed])
            print("submitted past 1,000 idle connections in \(String(format: "%.2f", waited)) s")
            #expect(waited < 3, "the client got through at once (\(waited) s)")
            // After the idle timeout the master closes them, the half-sent ones too (read gives 0 or an error).
            var open = Set(sockets.prefix(150))
            try await waitUntil("the master closes idle connections", timeout: 10, detail: { "\(open.count) of 150 still open" }) {
                for fd in open {
                    // A half-sent request may have been answered (401: it carried no token) before the connection closed.
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    var tv = timeval(tv_sec: 0, tv_usec: 1000)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    var n = read(fd, &buffer, buffer.count)
                    while n > 0 { n = read(fd, &buffer, buffer.count) }
                    if n == 0 || (n < 0 && errno != EAGAIN) { open.remove(fd) }
                }
                return open.isEmpty
            }
            let closedAfter = Date().timeIntervalSince(start)
            #expect(closedAfter > 1.5, "not before the idle timeout (\(closedAfter) s)")
            sockets.forEach { close($0) }
            sockets = []
        }

        @Test func endedJobsLeaveMemoryButNotTheStore() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1], master: ["--keep-ended", "1"])
            defer { cluster.stop() }
            let id = try await cluster.submit(["--gpus", "0", "echo kept"])
            try await cluster.waitForState(id, [.completed])
            #expect(try await cluster.mgpu(["queue"]).stdout.contains(id.rawValue), "listed while recent")
            try await waitUntil("it leaves the listing", timeout: 10) {
                let all = try await cluster.client.http.request(.GET, "/v1/queue?finished=100000")
                return !String(decoding: all.body, as: UTF8.self).contains(id.rawValue)
            }
            // Still there for whoever asks for it: its record, its output, a cancel that says it ended.
            #expect(try await cluster.job(id).state == .completed)
            #expect(try await cluster.mgpu(["logs", id.rawValue]).stdout == "kept\n")
            #expect(try await cluster.client.cancel([id.rawValue]).results.first?.outcome == .alreadyFinished)
            // And after a restart it is not loaded into memory, yet still found.
            try await cluster.killMaster()
            try await cluster.startMaster()
            let all = try await cluster.client.http.request(.GET, "/v1/queue?finished=100000")
            #expect(!String(decoding: all.body, as: UTF8.self).contains(id.rawValue))
            #expect(try await cluster.job(id).state == .completed)
        }

        @Test func connectionsHeldOpenCannotKeepOthersOutNorCutALongPoll() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1], master: ["--max-connections", "40"])
            defer { cluster.stop() }
            // A long-poll in flight (`mgpu logs -f` of a running job) that must not be cut.
            let id = try await cluster.submit(["--gpus", "0", "sleep 4; echo late"])
            try await cluster.waitForState(id, [.running])
            let opened = { try await Self.connectionsOpened(cluster) }
            let before = try await opened()
            let follower = try cluster.startCLI(["logs", "-f", id.rawValue])
            try await waitUntil("the follower's connection", timeout: 10) { try await opened() > before }
            // 60 keep-alive connections, each sending a cheap request every 200 ms: never idle, so the idle timeout
            // never closes them, and more of them than the cap.
            raiseOwnFileLimit()
            let flooded = try await opened()
            let sockets = (0..<60).compactMap { _ in connectLoopback(cluster.port) }
            defer { sockets.forEach { close($0) } }
            for fd in sockets { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            let stop = Flag()
            let pinger = Task {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while await !stop.value {
                    for fd in sockets {
                        _ = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n".withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                        while read(fd, &buffer, buffer.count) > 0 {}
                    }
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            try await waitUntil("the 60 connections accepted (and some quiet ones closed)", timeout: 10) { try await opened() >= flooded + 60 }
            let start = Date()
            let next = try await cluster.submit(["--gpus", "0", "echo in"])
            let waited = Date().timeIntervalSince(start)
            try await cluster.waitForState(next, [.completed], timeout: 15)
            #expect(try await waitForExit(follower.pid, timeout: 20) == 0, "the long-poll was not cut")
            #expect(cluster.read(follower.out) == "late\n")
            await stop.set()
            _ = await pinger.value
            print("submitted past 60 busy keep-alive connections (cap 40) in \(String(format: "%.2f", waited)) s")
            #expect(waited < 5, "a new client got in (\(waited) s)")
        }
    }
}

/// A flag one task sets and another polls.
actor Flag {
    var value = false
    func set() { value = true }
}

/// A TCP connection to 127.0.0.1:port, or nil.
func connectLoopback(_ port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = UInt16(port).bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { close(fd); return nil }
    return fd
}

/// The test process opens many sockets: take the hard limit of open files.
func raiseOwnFileLimit() {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
}
