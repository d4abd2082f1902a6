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
            import http.server, os, sys
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
            with open(out + '.port.new', 'w') as f: f.write(str(server.server_address[1]))
            os.replace(out + '.port.new', out + '.port')   # whole when it appears: the test reads it once it exists
            server.serve_forever()
            """

        /// The receiver, started, with its port and the lines it kept so far.
        struct Receiver {
            let pid: pid_t
            let port: String
            let out: String
            init(dir: String) async throws {
                out = dir + "/hooks"
                pid = try Spawn.start(["/usr/bin/env", "python3", "-c", NotifyTests.receiver, dir + "/hooks"])
                let file = out + ".port"
                try await waitUntil("the receiver listens", timeout: 20) { FileManager.default.fileExists(atPath: file) }
                port = try String(contentsOfFile: file, encoding: .utf8)
            }
            func lines() -> [Substring] { ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").split(separator: "\n") }
            func stop() { kill(pid, SIGKILL) }
        }

        /// `--notify URL` and a user's default: the master posts the job's end (state, exit code, a readable `text`)
        /// to a live receiver, retrying after a 500; a bad URL is refused at submit; a receiver that is gone holds
        /// nothing up.
        @Test func endedJobsArePostedToTheirURL() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let hook = try await Receiver(dir: cluster.dir)
            defer { hook.stop() }
            let (port, lines, pid) = (hook.port, hook.lines, hook.pid)

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
            let badPort = try await cluster.mgpu(["submit", "--notify", "http://127.0.0.1:70000/x", "true"])
            #expect(badPort.status != 0 && badPort.stderr.contains("--notify takes"), "a port past 65535: \(badPort.stderr)")
            // Others see that a job notifies, never where (a webhook's address is a secret).
            let listing = try await cluster.mgpu(["queue", "--json"])
            #expect(!listing.stdout.contains("/hook") && !listing.stdout.contains("/default") && listing.stdout.replacingOccurrences(of: " ", with: "").contains("\"notifies\":true"), "\(listing.stdout.prefix(500))")

            // An array notifies once, when its last task ends.
            let array = try await cluster.submit(["--gpus", "0", "--array", "0-2", "exit $MGPU_ARRAY_TASK_ID"])
            try await waitUntil("the array's one event", timeout: 20) { lines().count == 3 }
            #expect(lines()[2].hasPrefix("/default {") && lines()[2].contains("\"id\":\"\(array)\"") && lines()[2].contains("FAILED"), "\(lines()[2])")
            try await Task.sleep(for: .milliseconds(500))
            #expect(lines().count == 3, "no event per task")

            // The receiver goes away: jobs still run and end as before.
            kill(pid, SIGKILL)
            let after = try await cluster.submit(["--gpus", "0", "--notify", "http://127.0.0.1:\(port)/gone", "true"])
            #expect(try await cluster.waitForState(after, [.completed]).state == .completed)
            let next = try await cluster.submit(["--gpus", "0", "true"])
            #expect(try await cluster.waitForState(next, [.completed]).state == .completed)
        }
    }
}

extension EndToEndTests.NotifyTests {
    /// Idle GPUs on simulated GPUs (as busy as the job keeps a CPU): a job that sleeps is marked idle after
    /// --idle-after (mgpu queue, its JSON, /metrics), its owner's URL gets a "job.idle" event, and with
    /// --idle-action cancel it is cancelled after --idle-cancel-after, saying why; a busy job is never marked.
    @Test func idleJobsAreMarkedNotifiedAndCancelled() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 2],
                                                  master: ["--idle-after", "0:02", "--idle-threshold", "5", "--idle-action", "cancel",
                                                           "--idle-cancel-after", "0:05"])
        defer { cluster.stop() }
        let hook = try await Receiver(dir: cluster.dir)
        defer { hook.stop() }
        let (port, lines) = (hook.port, hook.lines)

        let busy = try await cluster.submit(["--gpus", "1", "timeout 12 sh -c 'while :; do :; done'; true"])
        let idle = try await cluster.submit(["--gpus", "1", "--notify", "http://127.0.0.1:\(port)/idle", "sleep 60"])
        try await waitUntil("the sleeping job marked idle", timeout: 20) { try await cluster.job(idle).idleSince != nil }
        let queue = try await cluster.mgpu(["queue"])
        let line = try #require(queue.stdout.split(separator: "\n").first { $0.hasPrefix(idle.rawValue) })
        #expect(line.contains("idle: GPUs below 5 % for"), "\(queue.stdout)")
        let metrics = try await cluster.client.http.request(.GET, "/metrics")
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(text.contains("mgpu_jobs_idle 1") && text.contains("mgpu_gpus_idle_held 1"), "\(text.split(separator: "\n").filter { $0.contains("idle") })")
        #expect(text.contains("mgpu_user_gpu_seconds_total{user=") && text.contains("mgpu_user_energy_joules_total{user="))
        // The receiver refuses its first request: the idle event arrives on the retry.
        try await waitUntil("the idle event", timeout: 20) { !lines().isEmpty }
        #expect(lines()[0].hasPrefix("/idle {") && lines()[0].contains("\"event\":\"job.idle\"") && lines()[0].contains("idle"), "\(lines()[0])")

        let cancelled = try await cluster.waitForState(idle, [.cancelled], timeout: 30)
        #expect(cancelled.reason?.hasPrefix("cancelled: its GPUs stayed below 5 % for ") == true && cancelled.reason?.hasSuffix("(--idle-action cancel)") == true,
                "\(cancelled.reason ?? "")")
        #expect(try await cluster.job(busy).idleSince == nil, "the busy job was never marked")
        #expect(try await cluster.waitForState(busy, [.completed], timeout: 30).state == .completed)
    }
}
