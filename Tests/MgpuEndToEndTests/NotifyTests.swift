import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

extension EndToEndTests {
    @Suite struct NotifyTests {
        /// A real HTTP receiver (Python's http.server) that refuses its first request with 500 and keeps the others'
        /// bodies, a line each.
        static let receiver = """
            import http.server, sys
            out = sys.argv[1]
            seen = [0]
            class Hook(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                    seen[0] += 1
                    if seen[0] == 1:
                        self.send_response(500); self.end_headers(); return
                    with open(out, 'ab') as f: f.write(self.path.encode() + b' ' + body + b'\\n')
                    self.send_response(204); self.end_headers()
                def log_message(self, *args): pass
            server = http.server.HTTPServer(('127.0.0.1', 0), Hook)
            open(out + '.port', 'w').write(str(server.server_address[1]))
            server.serve_forever()
            """

        /// `--notify URL` and a user's default: the master posts the job's end (state, exit code, a readable `text`)
        /// to a live receiver, retrying after a 500; a bad URL is refused at submit; a receiver that is gone holds
        /// nothing up.
        @Test func endedJobsArePostedToTheirURL() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let out = cluster.dir + "/hooks"
            let pid = try Spawn.start(["/usr/bin/env", "python3", "-c", Self.receiver, out])
            defer { kill(pid, SIGKILL) }
            try await waitUntil("the receiver listens", timeout: 20) { FileManager.default.fileExists(atPath: out + ".port") }
            let port = try String(contentsOfFile: out + ".port", encoding: .utf8)
            func lines() -> [Substring] { ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n") }

            let failing = try await cluster.submit(["--gpus", "0", "--name", "step", "--notify", "http://127.0.0.1:\(port)/hook?from=mgpu", "exit 3"])
            try await waitUntil("the failed job's event, after a retry", timeout: 20) { lines().count == 1 }
            let first = lines()[0]
            #expect(first.hasPrefix("/hook?from=mgpu {"), "\(first)")
            let event = try JSONDecoder().decode(JobEvent.self, from: Data(first.drop { $0 != "{" }.utf8))
            #expect(event.event == "job.ended" && event.id == failing && event.state == .failed && event.exitCode == 3)
            #expect(event.text.hasPrefix("mgpu: job \(failing) (step, ") && event.text.contains("FAILED after ") && event.text.contains("(exit code 3)"), "\(event.text)")

            // A user's default, for jobs without --notify.
            let me = String(cString: getpwuid(geteuid())!.pointee.pw_name)
            let set = try await cluster.mgpu(["admin", "user", "set", me, "--notify", "http://127.0.0.1:\(port)/default"])
            #expect(set.status == 0, "\(set.stderr)")
            let plain = try await cluster.submit(["--gpus", "0", "true"])
            try await waitUntil("the default's event", timeout: 20) { lines().count == 2 }
            #expect(lines()[1].hasPrefix("/default {") && lines()[1].contains("\"id\":\"\(plain)\"") && lines()[1].contains("COMPLETED"), "\(lines()[1])")

            let bad = try await cluster.mgpu(["submit", "--notify", "ftp://example.org/x", "true"])
            #expect(bad.status != 0 && bad.stderr.contains("--notify takes an http:// or https:// URL"), "\(bad.stderr)")

            // The receiver goes away: jobs still run and end as before.
            kill(pid, SIGKILL)
            let after = try await cluster.submit(["--gpus", "0", "--notify", "http://127.0.0.1:\(port)/gone", "true"])
            #expect(try await cluster.waitForState(after, [.completed]).state == .completed)
            let next = try await cluster.submit(["--gpus", "0", "true"])
            #expect(try await cluster.waitForState(next, [.completed]).state == .completed)
        }
    }
}
