import MgpuAgent
import MgpuCore
import Testing

@Suite struct SlurmAllocationTests {
    let eight = NvidiaSMI.parse((0..<8).map { "\($0), GPU-\($0)aaa, NVIDIA A100, 81920" }.joined(separator: "\n")).gpus

    @Test func outsideSlurmNothingChanges() {
        #expect(SlurmAllocation.restrict(eight, environment: ["CUDA_VISIBLE_DEVICES": "0"]) == nil)
        #expect(SlurmAllocation.restrict(eight, environment: ["SLURM_JOB_ID": "7"]) == nil)
    }

    @Test func cgroupRenumberedDevicesKeepTheirPhysicalIndex() throws {
        // With ConstrainDevices, Slurm renumbers CUDA_VISIBLE_DEVICES from 0 and puts the physical index in SLURM_JOB_GPUS.
        let gpus = try #require(SlurmAllocation.restrict(eight, environment: ["SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0,1",
                                                                               "SLURM_JOB_GPUS": "4,5"]))
        #expect(gpus.map(\.index) == [0, 1])
        #expect(gpus.map(\.deviceId) == ["0", "1"])
        #expect(gpus.map(\.physicalIndex) == [4, 5])
    }

    @Test func plainDevicesMapToWhatNvidiaSMIShows() throws {
        let gpus = try #require(SlurmAllocation.restrict(eight, environment: ["SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "2,6"]))
        #expect(gpus.map(\.index) == [0, 1])
        #expect(gpus.map(\.deviceId) == ["2", "6"])
        #expect(gpus.map(\.physicalIndex) == [2, 6])
        #expect(gpus.map(\.uuid) == ["GPU-2aaa", "GPU-6aaa"])
    }

    @Test func uuidsAreMatchedByUUID() throws {
        let gpus = try #require(SlurmAllocation.restrict(eight, environment: ["SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "GPU-3aaa"]))
        #expect(gpus.count == 1)
        #expect(gpus[0].physicalIndex == 3)
        #expect(gpus[0].deviceId == "GPU-3aaa")
    }
}
