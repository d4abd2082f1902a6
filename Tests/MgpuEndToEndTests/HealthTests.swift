import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

extension EndToEndTests {
    /// GPU health and a site's health check, end to end: a real agent reading a stand-in nvidia-smi (recorded `-q`
    /// outputs) and running a stand-in health program, a real master acting on what it reports.
    @Suite struct HealthTests {
        static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MgpuAgentTests/Fixtures").path

        @Test func unhealthyGPUsGetNoJobsAndANodeDrainsAndResumesItself() async throws {
            let cluster = try TestCluster()
            defer { cluster.stop() }
            let d = cluster.dir
            let healthy = try String(contentsOfFile: Self.fixtures + "/nvidia-smi-q-healthy.txt", encoding: .utf8)
            let gpu1Failing = try String(contentsOfFile: Self.fixtures + "/nvidia-smi-q-remap.txt", encoding: .utf8)
            let allFailing = healthy.replacingOccurrences(of: "Pending                           : No", with: "Pending                           : Yes")
            func report(_ text: String) throws { try text.write(toFile: d + "/q.txt", atomically: true, encoding: .utf8) }
            try report(healthy)
            try """
                #!/bin/sh
                case "$1" in
                -q) cat \(d)/q.txt ;;
                --query-gpu=index,uuid,name,memory.total)
                  echo "0, GPU-6d2a7c1e-1b2f-4c53-9a8e-0e1f2a3b4c50, NVIDIA A100-SXM4-80GB, 81920"
                  echo "1, GPU-6d2a7c1e-1b2f-4c53-9a8e-0e1f2a3b4c51, NVIDIA A100-SXM4-80GB, 81920" ;;
                --query-gpu=index,utilization*) echo "0, 5, 10, 81920, 34, 60"; echo "1, 0, 4, 81920, 33, 58" ;;
                esac
                true
                """.write(toFile: d + "/nvidia-smi", atomically: true, encoding: .utf8)
            chmod(d + "/nvidia-smi", 0o755)
            try "#!/bin/sh\n[ -e \(d)/bad ] && { echo 'disk /scratch is full'; exit 1; }\nexit 0\n".write(toFile: d + "/check", atomically: true, encoding: .utf8)
            chmod(d + "/check", 0o755)
            try await cluster.startMaster()
            try cluster.startAgent("gpubox", gpus: nil, extra: ["--nvidia-smi", d + "/nvidia-smi", "--report-interval", "0.2",
                                                               "--health-interval", "0.2", "--health-check", d + "/check"])
            try await cluster.waitForNodes(["gpubox"])
            func node() async throws -> NodeInfo { try #require(try await cluster.client.queue().nodes.first) }

            // GPU 1 reports row remapping pending: it gets no job, and says why.
            try report(gpu1Failing)
            try await waitUntil("GPU 1 unhealthy", timeout: 15) { try await node().unhealthyGPUs == [1] }
            let first = try await cluster.submit(["sleep 600"])
            #expect(try await cluster.waitForState(first, [.running]).placementText == "gpubox:gpu0")
            let second = try await cluster.submit(["echo second"])
            #expect(try await cluster.job(second).state == .pending, "the only other GPU is unhealthy")
            let verbose = try await cluster.mgpu(["nodes", "-v"]).stdout
            #expect(verbose.contains("gpubox gpu1 UNHEALTHY: 2 volatile uncorrectable ECC errors (DRAM Uncorrectable); row remapping pending"), "\(verbose)")
            let metrics = String(decoding: try await cluster.client.http.request(.GET, "/metrics").body, as: UTF8.self)
            #expect(metrics.contains("mgpu_gpus{state=\"unhealthy\"} 1.0"))
            #expect(metrics.contains(#"mgpu_gpu_healthy{node="gpubox",gpu="1",uuid="GPU-6d2a7c1e-1b2f-4c53-9a8e-0e1f2a3b4c51"} 0.0"#))
            #expect(metrics.contains(#"mgpu_gpu_healthy{node="gpubox",gpu="0",uuid="GPU-6d2a7c1e-1b2f-4c53-9a8e-0e1f2a3b4c50"} 1.0"#))

            // Every GPU failing: the node drains itself; its running job goes on.
            try report(allFailing)
            try await waitUntil("the node drains itself", timeout: 15) { try await node().drain?.by == NodeHealth.drainer }
            let drained = try await node()
            #expect(drained.drain?.reason.hasPrefix("every GPU unhealthy: gpu0 row remapping pending") == true, "\(String(describing: drained.drain))")
            let firstState = try await cluster.job(first).state
            #expect(drained.drainState == "DRAINING" && firstState == .running)
            let listed = try await cluster.mgpu(["nodes"]).stdout
            #expect(listed.contains("gpubox DRAINING: every GPU unhealthy") && listed.contains("by health check"), "\(listed)")

            // Healthy again: it resumes by itself, and the waiting job starts.
            try report(healthy)
            try await waitUntil("the node resumes", timeout: 15) { try await node().drain == nil }
            try await cluster.waitForState(second, [.completed], timeout: 20)

            // The site's check fails: drained with its first line; passes: resumed.
            FileManager.default.createFile(atPath: d + "/bad", contents: nil)
            try await waitUntil("drained by the health check", timeout: 15) { try await node().drain?.reason == "health check failed: disk /scratch is full" }
            try FileManager.default.removeItem(atPath: d + "/bad")
            try await waitUntil("resumed after the check passes", timeout: 15) { try await node().drain == nil }

            // An admin's drain is the admin's: a failing and then passing check does not lift it.
            #expect(try await cluster.mgpu(["admin", "node", "drain", "gpubox", "--reason", "swap GPU 1"]).status == 0)
            FileManager.default.createFile(atPath: d + "/bad", contents: nil)
            try await waitUntil("a failing check seen", timeout: 15) { try await node().telemetry?.healthCheck != nil }
            try FileManager.default.removeItem(atPath: d + "/bad")
            try await waitUntil("a passing check seen", timeout: 15) { try await node().telemetry?.healthCheck == nil }
            #expect(try await node().drain?.reason == "swap GPU 1")
            _ = try await cluster.mgpu(["cancel", first.rawValue])
        }
    }
}
