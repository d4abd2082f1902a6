import Foundation
import MgpuCore
import Testing

extension EndToEndTests {
    /// `--gpu-type` and `--gpu-mem` against real agents whose simulated GPUs report different models.
    @Suite struct GPUKindTests {
        @Test func jobsGoToGPUsOfTheirKindAndImpossibleKindsAreRefused() async throws {
            let cluster = try await TestCluster.start(agents: [:])
            defer { cluster.stop() }
            try cluster.startAgent("a100box", gpus: 2, extra: ["--simulate-gpu-model", "NVIDIA A100-SXM4-80GB", "--simulate-gpu-memory", "81920"])
            try cluster.startAgent("gamer", gpus: 2)
            try await cluster.waitForNodes(["a100box", "gamer"])

            let typed = try await cluster.submit(["--gpu-type", "A100", "--gpus", "2", "true"])
            let big = try await cluster.submit(["--gpu-mem", "40G", "true"])
            for id in [typed, big] {
                let job = try await cluster.waitForState(id, [.completed])
                #expect(job.parts.map(\.nodeId) == ["a100box"], "\(id) ran on \(job.parts.map(\.nodeId))")
            }
            let any = try await cluster.waitForState(try await cluster.submit(["--gpu-mem", "24G", "--gpus", "2", "--nodes", "2", "true"]),
                                                     [.completed])
            #expect(Set(any.parts.map(\.nodeId)) == ["a100box", "gamer"], "24 GiB or more: both kinds")

            let none = try await cluster.mgpu(["submit", "--gpu-type", "h100", "true"])
            #expect(none.status != 0)
            #expect(none.stderr.contains("--gpu-type h100: no node has 1 such GPU (GPUs here: 2 × NVIDIA A100-SXM4-80GB 80 GiB, 2 × Simulated GPU 24 GiB)"),
                    "\(none.stderr)")
            let both = try await cluster.mgpu(["submit", "--gpu-type", "a100", "--gpu-ids", "0", "true"])
            #expect(both.status != 0 && both.stderr.contains("give one or the other") && !both.stderr.contains("Stack"), "\(both.stderr)")
            let size = try await cluster.mgpu(["submit", "--gpu-mem", "lots", "true"])
            #expect(size.status != 0 && size.stderr.contains("--gpu-mem takes a size"), "\(size.stderr)")
            let nodes = try await cluster.mgpu(["nodes", "-v"])
            #expect(nodes.stdout.contains("NVIDIA A100-SXM4-80GB (simulated)"), "\(nodes.stdout)")
            let agent = try await cluster.mgpu(["node", "--simulate-gpu-model", "X"])
            #expect(agent.status != 0 && agent.stderr.contains("give --simulate-gpus N too"), "\(agent.stderr)")
        }
    }
}
