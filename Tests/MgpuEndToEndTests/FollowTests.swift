import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

extension EndToEndTests {
    /// `GET /v1/jobs/{id}/follow`: the job and every stream in one answer, waiting at the master while nothing changes;
    /// what `srun`, `attach` and `logs -f` follow a job with.
    @Suite struct FollowTests {
        /// Each stream from its offset, the state with it, a wait that lasts until the job changes (and not longer),
        /// every stream complete once the job has ended; bad parameters refused with one line; others' jobs refused.
        @Test func oneAnswerHoldsTheJobAndEveryStreamAndWaitsForAChange() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let stop = cluster.dir + "/stop"
            let id = try await cluster.submit(["--", "sh", "-c", "echo one; echo two >&2; while [ ! -e \(stop) ]; do sleep 0.02; done; echo three"])
            let client = cluster.client
            var answer = try await client.follow(job: id.rawValue, offsets: [], seen: nil, wait: 0)
            try await waitUntil("both streams' first lines", timeout: 20) {
                answer = try await client.follow(job: id.rawValue, offsets: [], seen: nil, wait: 0)
                return answer.streams.map { String(decoding: $0.data, as: UTF8.self) } == ["one\n", "two\n"]
            }
            #expect(answer.job.id == id && answer.job.state == .running)
            #expect(answer.streams.map(\.stream) == [.stdout, .stderr] && answer.streams.allSatisfy { $0.rank == 0 && !$0.complete })
            #expect(answer.streams.map(\.size) == [4, 4] && answer.streams.map(\.offset) == [0, 0])
            // From the offsets given; limit 0: the state only.
            let tail = try await client.follow(job: id.rawValue, offsets: [1, 2], seen: nil, wait: 0)
            #expect(tail.streams.map { String(decoding: $0.data, as: UTF8.self) } == ["ne\n", "o\n"])
            #expect(try await client.follow(job: id.rawValue, offsets: [], seen: nil, wait: 0, limit: 0).streams.allSatisfy(\.data.isEmpty))
            // Nothing new and still RUNNING: the master waits until the job changes (here: new output, then its end).
            let waiting = Task { () -> (FollowResponse, Date) in
                let answer = try await client.follow(job: id.rawValue, offsets: [4, 4], seen: .running, wait: 30)
                return (answer, Date())
            }
            try await Task.sleep(for: .milliseconds(500))   // the request reaches the master and waits there
            let created = Date()
            #expect(FileManager.default.createFile(atPath: stop, contents: nil))
            let (woken, at) = try await waiting.value
            #expect(at >= created, "the answer came before anything changed: the master did not wait")
            #expect(at.timeIntervalSince(created) < 10, "woken by the change, not by the end of the wait")
            #expect(woken.streams.contains { !$0.data.isEmpty } || woken.job.state != .running, "\(woken)")
            // Once ended: complete, the state final, the last bytes there.
            try await waitUntil("the job's end", timeout: 20) {
                try await client.follow(job: id.rawValue, offsets: [4, 4], seen: nil, wait: 0).streams.allSatisfy(\.complete)
            }
            let ended = try await client.follow(job: id.rawValue, offsets: [4, 4], seen: .running, wait: 30)
            #expect(ended.job.state == .completed && ended.job.exit?.code == 0)
            #expect(ended.streams.map { String(decoding: $0.data, as: UTF8.self) } == ["three\n", ""])
            // Refusals: one line each, in JSON; another user's job is not theirs to read.
            for (query, words) in [("state=BOGUS", "state must be one of"), ("offsets=1,x", "offsets must be"),
                                   ("offsets=-1", "offsets must be"), ("limit=99999999", "limit must be"), ("wait=nan", "wait must be")] {
                let refused = try await client.http.request(.GET, "/v1/jobs/\(id)/follow?\(query)")
                let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(refused.body)))?.error.message ?? ""
                #expect(refused.status == 400 && message.contains(words) && !message.contains("\n"), "\(query): \(refused.status) \(message)")
            }
            let unknown = try await client.http.request(.GET, "/v1/jobs/0123ABCD/follow")
            #expect(unknown.status == 404)
            let other = try #require(try await client.addUser("nobody", admin: false).token)
            let theirs = try await MasterClient(host: "127.0.0.1", port: cluster.port, token: other).http.request(.GET, "/v1/jobs/\(id)/follow")
            #expect(theirs.status == 403, "\(theirs.status) \(String(decoding: theirs.body, as: UTF8.self))")
        }

        /// A task of an array that has not started is its array's owner's: another user can follow it no more than
        /// read its output. A stream that writes more than one answer holds does not hold back the others. More offsets
        /// than one request may name are refused with one line.
        @Test func othersTasksAreRefusedAndABusyStreamSharesTheAnswer() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let client = cluster.client
            let other = try #require(try await client.addUser("nobody", admin: false).token)
            let theirs = MasterClient(host: "127.0.0.1", port: cluster.port, token: other)
            // The one GPU held: the array's tasks stay pending.
            let holder = try await cluster.submit(["--", "sleep", "60"])
            _ = try await cluster.waitForState(holder, [.running])
            let array = try await cluster.submit(["--array", "1-3", "--", "true"])
            let task = try #require(JobID(array.rawValue + "_2"))
            #expect(try await client.follow(job: task.rawValue, offsets: [], seen: nil, wait: 0).job.state == .pending)
            for route in ["follow", "output"] {
                let refused = try await theirs.http.request(.GET, "/v1/jobs/\(task)/\(route)?wait=0")
                #expect(refused.status == 403, "\(route): \(refused.status) \(String(decoding: refused.body, as: UTF8.self))")
            }
            _ = try await client.cancel([holder.rawValue, array.rawValue])
            // 6 MB on stdout, one line on stderr: both streams have bytes in the first answer.
            let busy = try await cluster.submit(["--", "sh", "-c", "head -c 6000000 /dev/zero | tr '\\0' a; echo err >&2"])
            _ = try await cluster.waitForState(busy, [.completed], timeout: 60)
            try await waitUntil("all the output at the master", timeout: 30) {
                try await client.follow(job: busy.rawValue, offsets: [], seen: nil, wait: 0, limit: 0).streams.map(\.size) == [6_000_000, 4]
            }
            let answer = try await client.follow(job: busy.rawValue, offsets: [], seen: nil, wait: 0)
            #expect(answer.streams.map { $0.data.count }.reduce(0, +) <= FollowLimits.maxBytes)
            #expect(answer.streams.first?.data.isEmpty == false && answer.streams.first?.complete == false)
            #expect(answer.streams.last.map { String(decoding: $0.data, as: UTF8.self) } == "err\n" && answer.streams.last?.complete == true)
            // Too many offsets: refused in one line.
            let many = Array(repeating: "0", count: FollowLimits.maxOffsets + 1).joined(separator: ",")
            let tooMany = try await client.http.request(.GET, "/v1/jobs/\(busy)/follow?offsets=\(many)")
            let message = (try? JSONDecoder().decode(ErrorBody.self, from: Data(tooMany.body)))?.error.message ?? ""
            #expect(tooMany.status == 400 && message.contains("at most \(FollowLimits.maxOffsets)"), "\(tooMany.status) \(message)")
        }

        /// A master without the follow route, as before it had one: a real HTTP proxy (Python's http.server) in front of
        /// this master that passes every request on but answers follow requests as an older master answers a route it
        /// does not know (404, "no such endpoint"). `srun` and `logs -f` fall back to reading the state and each stream
        /// with a request each, and print the same.
        static let olderMaster = """
            import http.client, http.server, json, os, sys
            master, out = int(sys.argv[1]), sys.argv[2]
            class Proxy(http.server.BaseHTTPRequestHandler):
                protocol_version = 'HTTP/1.1'
                def forward(self):
                    body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                    route = self.path.split('?')[0]
                    with open(out, 'a') as f: f.write(self.command + ' ' + route + '\\n')
                    if route.endswith('/follow'):
                        answer = json.dumps({'error': {'message': 'no such endpoint: ' + self.command + ' ' + route}}).encode()
                        self.send_response(404); self.send_header('Content-Type', 'application/json')
                        self.send_header('Content-Length', str(len(answer))); self.end_headers(); self.wfile.write(answer)
                        return
                    connection = http.client.HTTPConnection('127.0.0.1', master, timeout=120)
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ('connection', 'host')}
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    self.send_response(response.status)
                    for k, v in response.getheaders():
                        if k.lower() not in ('connection', 'transfer-encoding', 'content-length', 'date', 'server'):
                            self.send_header(k, v)
                    self.send_header('Content-Length', str(len(data))); self.end_headers(); self.wfile.write(data)
                    connection.close()
                do_GET = do_POST = do_PUT = do_DELETE = forward
                def log_message(self, *args): pass
            server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Proxy)
            with open(out + '.port.new', 'w') as f: f.write(str(server.server_address[1]))
            os.replace(out + '.port.new', out + '.port')
            server.serve_forever()
            """

        @Test func anOlderMasterIsFollowedStreamByStream() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let log = cluster.dir + "/proxied"
            let pid = try Spawn.start(["/usr/bin/env", "python3", "-c", Self.olderMaster, "\(cluster.port)", log],
                                      stderr: .path(log + ".err", flags: O_WRONLY | O_CREAT | O_TRUNC))
            defer { kill(pid, SIGKILL) }
            try await waitUntil("the proxy listens", timeout: 20, detail: { cluster.read("proxied.err") ?? "" }) {
                FileManager.default.fileExists(atPath: log + ".port")
            }
            let port = try String(contentsOfFile: log + ".port", encoding: .utf8)
            let run = try await cluster.mgpu(["srun", "--", "sh", "-c", "echo out; sleep 0.3; echo err >&2; exit 3"],
                                             env: ["MGPU_MASTER_PORT": port])
            #expect(run.status == 3 && run.stdout == "out\n" && run.stderr.contains("err\n"), "\(run.status) \(run.stdout) \(run.stderr)")
            let routes = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            #expect(routes.filter { $0.hasSuffix("/follow") }.count == 1, "one follow request, refused; then none: \(routes)")
            #expect(routes.contains { $0.hasSuffix("/output") }, "the streams read one by one: \(routes)")
            let id = try await cluster.submit(["--", "sh", "-c", "echo one; sleep 0.3; echo two"])
            let logs = try await cluster.mgpu(["logs", "-f", id.rawValue], env: ["MGPU_MASTER_PORT": port])
            #expect(logs.status == 0 && logs.stdout == "one\ntwo\n", "\(logs.status) \(logs.stdout) \(logs.stderr)")
        }

        /// `srun` follows its job with follow requests: for a job with no output, a handful of requests in all (it made
        /// eight or more when it read the state and each stream with a request each). Counted by the master's metrics.
        @Test func srunFollowsWithAFewRequests() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            func requests() async throws -> [String: Int] {
                let text = String(decoding: try await cluster.client.http.request(.GET, "/metrics").body, as: UTF8.self)
                var counts: [String: Int] = [:]
                for line in text.split(separator: "\n") where line.hasPrefix("mgpu_http_requests_total{") && !line.contains("/metrics")
                    && !line.contains("/v1/agent/") {
                    guard let route = line.split(separator: "http_route=\"").dropFirst().first?.split(separator: "\"").first,
                          let value = Double(line.split(separator: " ").last ?? "") else { continue }
                    counts[String(route), default: 0] += Int(value)
                }
                return counts
            }
            let before = try await requests()
            let run = try await cluster.mgpu(["srun", "--", "sh", "-c", "sleep 0.2; exit 3"])
            #expect(run.status == 3)
            let after = try await requests()
            let made = after.map { ($0.key, $0.value - (before[$0.key] ?? 0)) }.filter { $0.1 > 0 }
            let total = made.map(\.1).reduce(0, +)
            #expect(made.contains { $0.0 == "/v1/jobs/{id}/follow" }, "\(made)")
            #expect(!made.contains { $0.0 == "/v1/jobs/{id}/output" }, "\(made)")
            #expect(total <= 6, "srun made \(total) requests: \(made.sorted { $0.0 < $1.0 })")
        }
    }
}
