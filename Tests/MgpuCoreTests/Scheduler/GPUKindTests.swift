@testable import MgpuCore
import Testing

/// `--gpu-type` and `--gpu-mem`: which GPUs a request may take, in both passes, and what is refused at submit.
@Suite struct GPUKindTests {
    static let a100 = GPUModel(name: "NVIDIA A100-SXM4-80GB", memoryMB: 81920)
    static let a100small = GPUModel(name: "NVIDIA A100-PCIE-40GB", memoryMB: 40536)
    static let rtx = GPUModel(name: "NVIDIA GeForce RTX 4090", memoryMB: 24564)

    /// "mixed" has GPUs 0-1 RTX 4090 and 2-3 A100 80GB; "big" 4 A100 80GB; "small" 2 A100 40GB.
    static let cluster: [NodeCapacity] = [
        NodeCapacity(id: "big", gpus: [0, 1, 2, 3], models: Dictionary(uniqueKeysWithValues: (0..<4).map { ($0, a100) })),
        NodeCapacity(id: "mixed", gpus: [0, 1, 2, 3], models: [0: rtx, 1: rtx, 2: a100, 3: a100]),
        NodeCapacity(id: "small", gpus: [0, 1], models: [0: a100small, 1: a100small]),
    ]

    func job(_ n: UInt32, _ request: ResourceRequest) -> PendingJob { PendingJob(id: JobID(number: n), request: request) }

    @Test func typeAndMemoryChooseTheGPUs() {
        // Tightest fit among GPUs of the kind: "mixed" has exactly two A100s, so a 2-GPU A100 job takes 2 and 3 there.
        let plan = Scheduler.plan(queue: [job(1, ResourceRequest(gpusPerNode: 2, gpuType: "a100", gpuMemoryMB: 80 * 1024)),
                                          job(2, ResourceRequest(gpusPerNode: 1, gpuType: "4090")),
                                          job(3, ResourceRequest(gpusPerNode: 2, gpuMemoryMB: 40 * 1024)),
                                          job(4, ResourceRequest(gpusPerNode: 1, gpuType: "RTX"))],
                                  nodes: Self.cluster)
        #expect(plan.placement(1) == [.init(nodeId: "mixed", gpus: [2, 3])])
        #expect(plan.placement(2) == [.init(nodeId: "mixed", gpus: [0])])
        #expect(plan.placement(3) == [.init(nodeId: "small", gpus: [0, 1])], "40,536 MiB counts as 40G (3 % slack)")
        #expect(plan.placement(4) == [.init(nodeId: "mixed", gpus: [1])], "case-insensitive")
    }

    @Test func aJobOfAKindWaitsForItsKindAndReservesOnlyIt() {
        var nodes = Self.cluster
        nodes[0].busyGPUs = [0, 1, 2, 3]
        nodes[1].busyGPUs = [2, 3]
        let plan = Scheduler.plan(queue: [job(1, ResourceRequest(gpusPerNode: 1, gpuType: "a100", gpuMemoryMB: 81920)),
                                          job(2, ResourceRequest(gpusPerNode: 1))],
                                  nodes: nodes)
        #expect(plan.placement(1) == nil, "the 4090s and the 40 GB A100s are free, but not of its kind")
        #expect(plan.placement(2) != nil, "a job of any kind takes what is free")
        let policy = Scheduler.plan(byPriority: [job(1, ResourceRequest(gpusPerNode: 1, gpuType: "a100", gpuMemoryMB: 81920)),
                                                 job(2, ResourceRequest(gpusPerNode: 1))],
                                    nodes: nodes, context: PolicyContext(now: 0, policy: SharingPolicy(),
                                                                         running: [RunningPart(nodeId: "mixed", gpus: [3], end: 50),
                                                                                   RunningPart(nodeId: "big", gpus: [0], end: 80)],
                                                                         holdings: [:]))
        #expect(policy.reservation == .init(job: JobID(number: 1), start: 50), "its kind frees up first on mixed:3")
        #expect(policy.placement(2) != nil)
    }

    /// What a real H100 80GB reports (nvidia-smi on driver 580: 81,559 MiB, less than 80 GiB) is what `--gpu-type h100
    /// --gpu-mem 80G` asks for; 90G is more than it has.
    @Test func anH100AsItReportsItself() throws {
        let h100 = GPUModel(name: "NVIDIA H100 80GB HBM3", memoryMB: 81559)
        let eighty = try #require(GPUModel.parseMemory("80G"))
        #expect(ResourceRequest(gpusPerNode: 1, gpuType: "H100", gpuMemoryMB: eighty).admits(h100))
        #expect(ResourceRequest(gpusPerNode: 1, gpuMemoryMB: GPUModel.parseMemory("80GB")).admits(h100))
        #expect(!ResourceRequest(gpusPerNode: 1, gpuMemoryMB: GPUModel.parseMemory("90G")).admits(h100))
        #expect(!ResourceRequest(gpusPerNode: 1, gpuType: "a100").admits(h100))
    }

    @Test func admissionSaysWhatExists() {
        func refusal(_ request: ResourceRequest) -> String? { Admission.check(command: "x", request: request, nodes: Self.cluster)?.message }
        #expect(refusal(ResourceRequest(gpusPerNode: 4, gpuType: "a100")) == nil)
        #expect(refusal(ResourceRequest(gpusPerNode: 2, nodes: 2, gpuType: "a100", gpuMemoryMB: 80 * 1024)) == nil, "big and mixed")
        #expect(refusal(ResourceRequest(gpusPerNode: 1, gpuType: "h100"))
                == "--gpu-type h100: no node has 1 such GPU (GPUs here: 6 × NVIDIA A100-SXM4-80GB 80 GiB, 2 × NVIDIA A100-PCIE-40GB 39.6 GiB, 2 × NVIDIA GeForce RTX 4090 24 GiB)")
        #expect(refusal(ResourceRequest(gpusPerNode: 3, nodes: 2, gpuMemoryMB: 80 * 1024))?
            .hasPrefix("--gpu-mem 80 GiB: the job asks for 2 nodes with 3 such GPUs each, but only 1 node(s) have that many") == true)
    }

    @Test func memorySizesParse() {
        #expect(GPUModel.parseMemory("40G") == 40960)
        #expect(GPUModel.parseMemory("40gb") == 40960 && GPUModel.parseMemory("40GiB") == 40960)
        #expect(GPUModel.parseMemory("81920M") == 81920 && GPUModel.parseMemory("81920") == 81920)
        #expect(GPUModel.parseMemory("1.5T") == 1_572_864)
        for bad in ["", "G", "-1G", "0", "lots", "nanG", "infG"] { #expect(GPUModel.parseMemory(bad) == nil, "\(bad)") }
        #expect(Self.rtx.hasMemory(atLeast: 24 * 1024) && !Self.rtx.hasMemory(atLeast: 26 * 1024))
    }
}
