import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

/// Where tests leave files for people to look at (screenshots).
let testArtifacts: String = {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/test-artifacts").path
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}()

func which(_ name: String) -> String? {
    (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        .map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// In CI the browser and tmux are installed by .ci/run, so a missing one fails there instead of skipping.
let requireTools = ProcessInfo.processInfo.environment["CI"] != nil

extension EndToEndTests {
    @Suite struct MonitoringTests {
        @Test func telemetryAndHistoryReachTheMaster() async throws {
            let cluster = try TestCluster()
            defer { cluster.stop() }
            try await cluster.startMaster()
            try cluster.startAgent("node001", gpus: 2, extra: ["--report-interval", "0.3"])
            try await cluster.waitForNodes(["node001"])
            // A simulated GPU is as busy as its job keeps a CPU.
            let id = try await cluster.submit(["timeout 30 sh -c 'while :; do :; done'"])
            try await cluster.waitForState(id, [.running])
            try await waitUntil("a busy simulated GPU", timeout: 15) {
                let t = try await cluster.client.queue().nodes.first?.telemetry
                return (t?.gpus.first { $0.index == 0 }?.utilization ?? 0) > 50
            }
            let node = try #require(try await cluster.client.queue().nodes.first)
            let t = try #require(node.telemetry)
            #expect(t.cpuPercent != nil && (t.memoryTotalMB ?? 0) > 0 && t.load?.count == 3)
            #expect(t.gpus[0].processes.first?.jobId == id, "the busy GPU names the mgpu job using it")
            #expect((t.gpus[1].utilization ?? 100) < 5, "the idle one stays idle")
            let history = try await cluster.client.http.request(.GET, "/v1/nodes/node001/history?minutes=5&points=10")
            let decoded = try JSONDecoder().decode(NodeHistoryResponse.self, from: Data(history.body))
            #expect(!decoded.times.isEmpty && decoded.gpus.count == 2 && decoded.times.count <= 10)
            let nodes = try await cluster.mgpu(["nodes", "-v"])
            #expect(nodes.stdout.contains("node001") && nodes.stdout.contains("Simulated GPU (simulated)") && nodes.stdout.contains(id.rawValue))
            let json = try JSONDecoder().decode([NodeInfo].self, from: Data(try await cluster.mgpu(["nodes", "--json"]).stdout.utf8))
            #expect(json.first?.allocatedGPUs == [0])
        }

        @Test func gpusInUseOutsideMgpuGetNoJobsUntilFree() async throws {
            let cluster = try TestCluster()
            defer { cluster.stop() }
            let d = cluster.dir
            let script = """
                #!/bin/sh
                case "$1" in
                --query-gpu=index,uuid,name,memory.total)
                  echo "0, GPU-00000000-0000-0000-0000-000000000000, NVIDIA A100-SXM4-80GB, 81920"
                  echo "1, GPU-11111111-1111-1111-1111-111111111111, NVIDIA A100-SXM4-80GB, 81920" ;;
                --query-gpu=index,utilization*)
                  echo "0, 97, 2048, 81920, 70, 300"; echo "1, [N/A], 10, 81920, [N/A], [Not Supported]" ;;
                --query-compute-apps*)
                  [ -f \(d)/foreign.pid ] && echo "GPU-00000000-0000-0000-0000-000000000000, $(cat \(d)/foreign.pid), 2048"
                  [ -f \(d)/job.pid ] && echo "GPU-11111111-1111-1111-1111-111111111111, $(cat \(d)/job.pid), 4096"
                  true ;;
                esac
                """
            try script.write(toFile: d + "/nvidia-smi", atomically: true, encoding: .utf8)
            chmod(d + "/nvidia-smi", 0o755)
            // Someone runs Python on GPU 0 directly.
            let stray = try Spawn.start(["/bin/sleep", "120"], stdout: .devNull, stderr: .devNull)
            defer { kill(stray, SIGKILL); _ = Spawn.waitStatus(stray) }
            try "\(stray)".write(toFile: d + "/foreign.pid", atomically: true, encoding: .utf8)
            try await cluster.startMaster()
            try cluster.startAgent("gpubox", gpus: nil, extra: ["--nvidia-smi", d + "/nvidia-smi", "--report-interval", "0.3"])
            try await cluster.waitForNodes(["gpubox"])
            try await waitUntil("GPU 0 in use outside mgpu", timeout: 15) { try await cluster.client.queue().nodes.first?.outsideGPUs == [0] }
            let marker = "8\(Int.random(in: 100_000...999_999))"
            let first = try await cluster.submit(["sleep \(marker)"])
            let placed = try await cluster.waitForState(first, [.running])
            #expect(placed.placementText == "gpubox:gpu1", "the job avoids the GPU in use outside mgpu")
            let second = try await cluster.submit(["echo ran on $CUDA_VISIBLE_DEVICES"])
            #expect(try await cluster.job(second).state == .pending)
            // The job's own process on GPU 1 is recognised as mgpu's, not outside.
            let jobPid = try #require(processes(containing: "sleep \(marker)").first)
            try "\(jobPid)".write(toFile: d + "/job.pid", atomically: true, encoding: .utf8)
            try await waitUntil("the job's process seen on GPU 1", timeout: 15) {
                try await cluster.client.queue().nodes.first?.telemetry?.gpus.first { $0.index == 1 }?.processes.first?.jobId == first
            }
            let verbose = try await cluster.mgpu(["nodes", "-v"])
            #expect(verbose.stdout.contains("in use outside mgpu (pid \(stray)"), "\(verbose.stdout)")
            #expect(try await cluster.client.queue().nodes.first?.outsideGPUs == [0])
            let metrics = String(decoding: try await cluster.client.http.request(.GET, "/metrics").body, as: UTF8.self)
            #expect(metrics.contains("mgpu_gpus{state=\"outside\"} 1.0"))
            // The stray process ends: GPU 0 is free again and the waiting job starts there.
            try FileManager.default.removeItem(atPath: d + "/foreign.pid")
            let ran = try await cluster.waitForState(second, [.completed], timeout: 20)
            #expect(ran.placementText == "gpubox:gpu0")
            _ = try await cluster.mgpu(["cancel", first.rawValue])
        }

        @Test func prometheusMetricsParse() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            let id = try await cluster.submit(["sleep 30"])
            try await cluster.waitForState(id, [.running])
            try await waitUntil("GPU readings", timeout: 15) { try await cluster.client.queue().nodes.first?.telemetry?.gpus.isEmpty == false }
            let response = try await cluster.client.http.request(.GET, "/metrics")
            #expect(response.header("content-type")?.hasPrefix("text/plain") == true)
            var samples: [String: Double] = [:]
            for line in String(decoding: response.body, as: UTF8.self).split(separator: "\n") {
                if line.hasPrefix("#") { continue }
                // name{labels} value  |  name value
                let parts = line.split(separator: " ")
                #expect(parts.count == 2, "a sample line: \(line)")
                let value = try #require(Double(parts.last!), "a number: \(line)")
                let name = String(parts[0])
                #expect(name.range(of: #"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})?$"#, options: .regularExpression) != nil,
                        "a valid series name: \(name)")
                samples[name] = value
            }
            #expect(samples["mgpu_jobs{state=\"RUNNING\"}"] == 1)
            #expect(samples["mgpu_gpus{state=\"allocated\"}"] == 1)
            #expect(samples["mgpu_gpus{state=\"free\"}"] == 1)
            #expect(samples.keys.contains { $0.hasPrefix("mgpu_gpu_utilization_percent{node=\"node001\",gpu=\"0\",uuid=\"SIM-node001-0\"}") })
            #expect(samples.keys.contains { $0.hasPrefix("mgpu_gpu_temperature_celsius{") })
            #expect(samples.keys.contains { $0.hasPrefix("mgpu_gpu_power_watts{") })
            #expect(samples.keys.contains { $0.hasPrefix("mgpu_node_cpu_utilization_percent{node=\"node001\"}") })
            #expect(samples["mgpu_scheduling_latency_seconds_count"] == 1)
            #expect(samples.keys.contains { $0.hasPrefix("mgpu_scheduling_latency_seconds_bucket{le=") })
            #expect(samples.keys.contains { $0.hasPrefix("mgpu_http_requests_total{") }, "API request counts")
            #expect(samples.keys.contains { $0.hasPrefix("mgpu_http_request_duration_seconds_bucket{") }, "API request durations")
            // Who holds which GPU, for a Grafana join on node and gpu; and GPUs held per user.
            let user = unixUser
            let held = try #require(samples.first { $0.key.hasPrefix("mgpu_gpu_allocation{node=\"node001\"") }, "an allocation series")
            #expect(held.key.contains("job=\"\(id)\"") && held.key.contains("user=\"\(user)\"") && held.value == 1, "\(held)")
            #expect(samples["mgpu_user_gpus{user=\"\(user)\"}"] == 1)
            // Once the job ends its allocation series goes, and the user holds none.
            _ = try await cluster.mgpu(["cancel", id.rawValue])
            try await cluster.waitForState(id, [.cancelled])
            let after = String(decoding: try await cluster.client.http.request(.GET, "/metrics").body, as: UTF8.self)
            #expect(!after.contains("mgpu_gpu_allocation{") && after.contains("mgpu_user_gpus{user=\"\(user)\"} 0.0"), "\(after)")
        }

        /// Prometheus' own linter accepts the whole exposition: counters end in _total, every family has HELP.
        @Test(.enabled(if: requireTools || which("promtool") != nil, "needs promtool (Debian's prometheus, installed by .ci/run)"))
        func promtoolAcceptsTheMetrics() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            let id = try await cluster.submit(["sleep 30"])
            try await cluster.waitForState(id, [.running])
            _ = try await cluster.client.http.request(.GET, "/v1/jobs/FFFFFFFF")  // an error answer, so the error counter exists
            try await waitUntil("GPU readings", timeout: 15) { try await cluster.client.queue().nodes.first?.telemetry?.gpus.isEmpty == false }
            let body = try await cluster.client.http.request(.GET, "/metrics").body
            #expect(String(decoding: body, as: UTF8.self).contains("mgpu_http_request_errors_total{"))
            try Data(body).write(to: URL(fileURLWithPath: cluster.dir + "/metrics.txt"))
            let promtool = try #require(which("promtool"), "promtool is not installed")
            let (status, output) = try Spawn.capture(["/bin/sh", "-c", "\"$0\" check metrics < \"$1\" 2>&1", promtool, cluster.dir + "/metrics.txt"])
            #expect(status == 0 && output.isEmpty, "promtool check metrics: \(output)")
        }

        @Test(.enabled(if: requireTools || which("chromium") != nil, "needs Debian's chromium (installed by .ci/run)"))
        func theDashboardShowsLiveDataInARealBrowser() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2, "node002": 2],
                                                      master: ["--node-timeout", "1.5", "--node-lost-after", "60"])
            defer { cluster.stop() }
            let id = try await cluster.submit(["--name", "train-llm", "sleep 60"])
            try await cluster.waitForState(id, [.running])
            try await waitUntil("telemetry", timeout: 15) { try await cluster.client.queue().nodes.allSatisfy { $0.telemetry != nil } }
            let chromium = try #require(which("chromium"), "chromium is not installed")
            func browse(_ args: [String]) async throws -> String {
                let (status, out) = try Spawn.capture([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000"]
                                                      + args + [try await signInLink(cluster) + "&events=1"], timeout: 60)
                #expect(status == 0, "chromium exit \(status)")
                return out
            }
            // A page dumped once its virtual time ran out: on a loaded machine the live data can come after that, so a
            // page without it is loaded again (at most three times; each with a link of its own).
            func dumped(until shown: (String) -> Bool) async throws -> String {
                var dom = ""
                for _ in 0..<3 {
                    dom = try await browse(["--dump-dom"])
                    if shown(dom) { break }
                }
                return dom
            }
            let dom = try await dumped { $0.range(of: #"data-live="[1-9]"#, options: .regularExpression) != nil }
            #expect(dom.range(of: #"data-live="[1-9]"#, options: .regularExpression) != nil, "live data arrived over Server-Sent Events")
            #expect(dom.contains("data-node=\"node001\"") && dom.contains("data-node=\"node002\""))
            #expect(dom.contains("id=\"gpu-count\">4<"), "GPU count")
            #expect(dom.contains("data-job=\"\(id)\"") && dom.contains("train-llm"))
            #expect(dom.contains("data-gpu=\"node001:0\"") || dom.contains("data-gpu=\"node002:0\""))
            #expect(dom.contains("simulated"))
            _ = try await browse(["--window-size=1280,900", "--screenshot=\(testArtifacts)/dashboard.png"])
            _ = try await browse(["--window-size=390,844", "--screenshot=\(testArtifacts)/dashboard-phone.png"])
            #expect(FileManager.default.fileExists(atPath: "\(testArtifacts)/dashboard.png"))
            print("dashboard screenshots: \(testArtifacts)/dashboard.png, dashboard-phone.png")
            // A node past its timeout shows DOWN at once, without stale numbers.
            let idle = try #require(try await cluster.client.queue().nodes.first { $0.allocatedGPUs.isEmpty }?.id)
            try await cluster.kill(agent: idle)
            try await cluster.waitForNodes([idle], up: false)
            #expect(try await cluster.client.queue().nodes.first { $0.id == idle }?.telemetry == nil)
            let down = try await dumped { $0.contains("not responding: numbers hidden") }
            #expect(down.contains("not responding: numbers hidden"))
            let jobPage = try Spawn.capture([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2000",
                                             "--dump-dom", try await signInLink(cluster) + "&next=/jobs/\(id)?once=1"], timeout: 60).output
            #expect(jobPage.contains("job <b>\(id)</b>") && jobPage.contains("RUNNING"))
        }

        /// The dashboard's history view and a job page's GPU graphs, in a real browser: ended jobs with their
        /// accounting, and the utilisation of the job's GPUs while it ran.
        @Test(.enabled(if: requireTools || which("chromium") != nil, "needs Debian's chromium (installed by .ci/run)"))
        func theDashboardShowsHistoryAndAJobsGraphs() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            let busy = try await cluster.submit(["--name", "busy-one", "timeout 3 sh -c 'while :; do :; done'; true"])
            let failed = try await cluster.submit(["--gpus", "0", "--name", "<b>bad</b>", "exit 4"])
            try await cluster.waitForState(busy, [.completed], timeout: 30)
            try await cluster.waitForState(failed, [.failed])
            let chromium = try #require(which("chromium"), "chromium is not installed")
            func dump(_ next: String) async throws -> String {
                try Spawn.capture([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom",
                                   try await signInLink(cluster) + next], timeout: 60).output
            }
            let dom = try await dump("&events=1")
            #expect(dom.contains("data-history=\"\(busy)\"") && dom.contains("data-history=\"\(failed)\""), "both ended jobs are listed")
            #expect(dom.contains("busy-one") && dom.contains("&lt;b&gt;bad&lt;/b&gt;") && !dom.contains("<b>bad</b>"), "names are escaped")
            #expect(dom.contains("exit code 4") && dom.contains(" Wh<"), "exit and energy")
            #expect(dom.contains("2 jobs"))
            let page = try await dump("&next=/jobs/\(busy)?once=1")
            #expect(page.contains("data-graph=\"job\"") && page.contains("<polyline"), "its GPUs' utilisation over time: \(page.suffix(1500))")
            #expect(page.contains("GPU-h") && page.contains("% util"))
        }

        @Test(.enabled(if: requireTools || which("tmux") != nil, "needs tmux (installed by .ci/run)"))
        func topShowsTheClusterLiveAndQuitsOnQ() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            // Its name tries to clear the screen: top shows the escape instead of obeying it.
            let id = try await cluster.submit(["--name", "watched\u{1B}[2J", "sleep 60"])
            try await cluster.waitForState(id, [.running])
            let session = "mgpu-top-\(getpid())"
            let tmux = try #require(which("tmux"))
            _ = try Spawn.capture([tmux, "new-session", "-d", "-s", session, "-x", "150", "-y", "40",
                                   "env MGPU_MASTER_PORT=\(cluster.port) MGPU_MASTER_HOST=127.0.0.1 MGPU_TOKEN=\(cluster.token ?? "") \(mgpuBinary) top --interval 0.5"])
            defer { _ = try? Spawn.capture([tmux, "kill-session", "-t", session]) }
            var screen = ""
            try await waitUntil("top draws the cluster", timeout: 20) {
                screen = (try? Spawn.capture([tmux, "capture-pane", "-p", "-t", session]).output) ?? ""
                return screen.contains("gpu1") && screen.contains(id.rawValue)
            }
            #expect(screen.contains("mgpu top — 1/1 nodes up, 1/2 GPUs free, 1 running"))
            #expect(screen.contains("node001  UP (simulated)"))
            #expect(screen.contains("gpu0 [") && screen.contains("watched\\x1b[2J"), "\(screen)")
            _ = try Spawn.capture([tmux, "send-keys", "-t", session, "q"])
            try await waitUntil("top quits on q", timeout: 10) {
                (try? Spawn.capture([tmux, "has-session", "-t", session]).status) != 0
            }
        }
    }
}
