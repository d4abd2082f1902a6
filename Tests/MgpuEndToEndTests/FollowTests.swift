import Foundation
import MgpuClient
import MgpuCore
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
