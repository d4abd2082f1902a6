import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

extension EndToEndTests {
    @Suite struct InteractiveTests {
        @Test func exitCodesAndSeparateStreams() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let ok = try await cluster.mgpu(["srun", "--", "sh", "-c", "echo out; echo err >&2"])
            #expect(ok.status == 0)
            #expect(ok.stdout == "out\n")
            #expect(ok.stderr == "err\n")
            #expect(try await cluster.mgpu(["srun", "--", "sh", "-c", "exit 3"]).status == 3)
            let killed = try await cluster.mgpu(["srun", "--", "python3", "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
            #expect(killed.status == 137, "128 + SIGKILL, as a shell reports it")
            let interactive = try await cluster.mgpu(["submit", "--interactive", "echo hi; exit 7"])
            #expect(interactive.status == 7)
            #expect(interactive.stdout == "hi\n")
        }

        /// `srun` reads the job from the master no more than it needs: once when it has started, once when its output
        /// is complete (and not at all then when the first read found it ended), however its output and its end come.
        /// Counted by the master's own metrics.
        @Test func srunAsksForTheJobAtMostTwice() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            func jobReads() async throws -> Int {
                let text = String(decoding: try await cluster.client.http.request(.GET, "/metrics").body, as: UTF8.self)
                return text.split(separator: "\n").filter {
                    $0.hasPrefix("mgpu_http_requests_total{") && $0.contains("http_route=\"/v1/jobs/{id}\"") && $0.contains("\"GET\"")
                }.compactMap { Int(Double($0.split(separator: " ").last ?? "") ?? -1) }.reduce(0, +)
            }
            // The second prints well before it ends: output that comes first is no reason to read the job again.
            for command in ["exit 3", "sleep 0.3; echo done; sleep 1; exit 4"] {
                let before = try await jobReads()
                let run = try await cluster.mgpu(["srun", "--", "sh", "-c", command])
                #expect(run.status == (command.hasPrefix("exit") ? 3 : 4), "the job's own exit code, from what srun read")
                let reads = try await jobReads() - before
                #expect(reads >= 1 && reads <= 2, "\(command): srun read the job \(reads) times")
            }
        }

        @Test func stdinReachesTheJobAndItsEndClosesIt() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let script = "import sys\nfor line in sys.stdin: print('got', line.strip())\nprint('eof')"
            let run = try await cluster.mgpu(["srun", "--", "python3", "-c", script], stdin: "first\nsecond line\n")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout == "got first\ngot second line\neof\n")
            let empty = try await cluster.mgpu(["srun", "--", "sh", "-c", "cat; echo done"])
            #expect(empty.stdout == "done\n", "no input: the job's stdin is closed at once")
        }

        @Test func withAPseudoTerminalWhenTheClientHasOne() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let probe = "import sys, os; print(sys.stdout.isatty(), os.environ.get('PYTHONUNBUFFERED')); print('\\r50%\\r100%')"
            let piped = try await cluster.mgpu(["srun", "--", "python3", "-c", probe], env: ["PYTHONUNBUFFERED": ""])
            #expect(piped.stdout == "False 1\n\r50%\r100%\n", "pipes and unbuffered Python without a terminal")
            // `script` gives the client a terminal.
            let inner = ([mgpuBinary, "srun", "--", "python3", "-c", probe]).map(Spawn.shellQuoteForTest).joined(separator: " ")
            let tty = try await cluster.mgpu([], env: [:], stdin: nil, viaShell: "script -qec \(Spawn.shellQuoteForTest(inner)) /dev/null")
            #expect(tty.stdout.contains("True"), "the job runs under a pseudo-terminal: \(tty.stdout.debugDescription)")
            #expect(tty.stdout.contains("\r50%\r100%"), "carriage returns pass through for progress bars")
        }

        @Test func timeLimitsEndJobsTIMEOUT() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let run = try await cluster.mgpu(["srun", "--time", "0:01", "--kill-grace", "1", "--", "sh", "-c", "echo start; sleep 30; echo never"])
            #expect(run.status == 252, "TIMEOUT's exit code")
            #expect(run.stdout == "start\n")
            #expect(run.stderr.contains("TIMEOUT: time limit of 1 s reached"))
            let limited = try await cluster.submit(["--time", "1-00:00:00", "sleep 30"])
            try await cluster.waitForState(limited, [.running])
            let queue = try await cluster.mgpu(["queue"])
            #expect(queue.stdout.contains("23:59:5") || queue.stdout.contains("1-00:00:00"), "time left shown: \(queue.stdout)")
            #expect(try await cluster.mgpu(["submit", "--time", "soon", "true"]).status == 2)
        }

        @Test func sessionTimeoutCancelsTheJob() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let run = try await cluster.mgpu(["srun", "--session-timeout", "1", "--", "sleep", "30"])
            #expect(run.status == 250)
            #expect(run.stderr.contains("--session-timeout"))
            #expect(try await cluster.client.queue().jobs.first?.state == .cancelled)
        }

        @Test func outputSurvivesAMasterRestartWhileAttached() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let lines = 300
            let srun = try cluster.startCLI(["srun", "--", "sh", "-c", "i=1; while [ $i -le \(lines) ]; do echo $i; sleep 0.01; i=$((i+1)); done"])
            try await waitUntil("some output", timeout: 15) { (cluster.read(srun.out)?.count ?? 0) > 20 }
            try await cluster.killMaster()
            try await Task.sleep(for: .milliseconds(700))
            try await cluster.startMaster()
            #expect(try await waitForExit(srun.pid, timeout: 60) == 0)
            let got = (cluster.read(srun.out) ?? "").split(separator: "\n").map(String.init)
            #expect(got == (1...lines).map(String.init), "every line exactly once, in order (\(got.count) lines)")
            #expect(cluster.read(srun.out + ".err")?.contains("reconnected") == true)
        }

        @Test func aKilledClientReattachesWithoutLosingOutput() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let lines = 200
            let srun = try cluster.startCLI(["srun", "--", "sh", "-c", "i=1; while [ $i -le \(lines) ]; do echo $i; sleep 0.01; i=$((i+1)); done"])
            try await waitUntil("some output", timeout: 15) { (cluster.read(srun.out)?.count ?? 0) > 10 }
            kill(srun.pid, SIGKILL)
            _ = try await waitForExit(srun.pid, timeout: 10)
            let id = try #require(try await cluster.client.queue().jobs.first?.id)
            let attach = try await cluster.mgpu(["attach", "--no-stdin", id.rawValue])
            #expect(attach.status == 0)
            #expect(attach.stdout.split(separator: "\n").map(String.init) == (1...lines).map(String.init))
            let tail = try await cluster.mgpu(["attach", "--tail", "2", id.rawValue])
            #expect(tail.stdout == "\(lines - 1)\n\(lines)\n")
        }

        @Test func aClientThatLosesTheMasterGivesUpAndSaysHowToReattach() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let srun = try cluster.startCLI(["srun", "--max-consecutive-timeouts", "3", "--connection-timeout", "1", "--", "sleep", "20"])
            try await waitUntil("the job runs", timeout: 15) { try await cluster.client.queue().jobs.first?.state == .running }
            try await cluster.killMaster()
            #expect(try await waitForExit(srun.pid, timeout: 30) == 2)
            let err = cluster.read(srun.out + ".err") ?? ""
            #expect(err.contains("gave up after 3 failed attempts"), "\(err)")
            #expect(err.contains("Reattach with: mgpu attach"))
            try await cluster.startMaster()
            #expect(try await cluster.client.queue().jobs.first?.state == .running, "the job keeps running")
        }

        @Test func twoHundredMegabytesArriveByteExact() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 1])
            defer { cluster.stop() }
            let out = cluster.dir + "/big.out"
            let run = try await cluster.mgpu([], viaShell: "\(mgpuBinary) srun -- sh -c 'yes | head -c 200000000' > \(out)", timeout: 300)
            #expect(run.status == 0)
            let (_, theirs) = try Spawn.capture(["sha256sum", out], timeout: 60)
            let (_, ours) = try Spawn.capture(["sh", "-c", "yes | head -c 200000000 | sha256sum"], timeout: 60)
            #expect(theirs.prefix(64) == ours.prefix(64))
        }
    }
}

extension Spawn {
    static func shellQuoteForTest(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
