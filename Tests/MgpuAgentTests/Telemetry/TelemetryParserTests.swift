import Foundation
@testable import MgpuAgent
import MgpuCore
import Testing

@Suite struct SystemStatsTests {
    @Test func cpuPercentFromTwoSamples() throws {
        let a = try #require(SystemStats.parseCPU("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n"))
        let b = try #require(SystemStats.parseCPU("cpu  200 0 200 800 100 0 0 0 0 0\n"))
        #expect(a == .init(busy: 200, total: 1000))
        #expect(SystemStats.percent(from: a, to: b) == 200.0 / 300.0 * 100)
        #expect(SystemStats.percent(from: b, to: a) == nil, "a counter going back is no reading")
        #expect(SystemStats.parseCPU("garbage") == nil)
    }

    @Test func loadAndMemory() throws {
        #expect(SystemStats.parseLoad("0.52 0.58 0.59 1/434 12345\n") == [0.52, 0.58, 0.59])
        #expect(SystemStats.parseLoad("nonsense") == nil)
        let mem = try #require(SystemStats.parseMemory("MemTotal:       24576000 kB\nMemFree:         1000000 kB\nMemAvailable:   20480000 kB\n"))
        #expect(mem.total == 24000 && mem.used == 4000)
        #expect(SystemStats.parseMemory("MemTotal: x kB") == nil)
    }
}

@Suite struct NvidiaSMITelemetryTests {
    @Test func readingsWithMissingFieldsAndGarbage() throws {
        let gpus = NvidiaSMI.parseTelemetry(try fixture("nvidia-smi-telemetry.txt"))
        #expect(gpus.map(\.index) == [0, 1, 2], "garbage lines are skipped")
        #expect(gpus[0] == GPUTelemetry(index: 0, utilization: 45, memoryUsedMB: 12034, memoryTotalMB: 81920, temperatureC: 61, powerW: 312.45))
        #expect(gpus[1].utilization == nil && gpus[1].memoryUsedMB == nil && gpus[1].temperatureC == nil && gpus[1].powerW == nil,
                "[N/A] and [Not Supported] are no readings, not zeros")
        #expect(gpus[1].memoryTotalMB == 81920)
        #expect(gpus[2].utilization == 0)
    }

    @Test func computeApps() throws {
        let apps = NvidiaSMI.parseComputeApps(try fixture("nvidia-smi-apps.txt"))
        #expect(apps.map(\.pid) == [4242, 5151])
        #expect(apps.map(\.memoryMB) == [10240, 0])
        #expect(NvidiaSMI.parseComputeApps("garbage\n, , \nGPU-x, -1, 5").isEmpty)
    }

    @Test func simulatedGPUsAreBusyOnlyWhileAJobHoldsThem() {
        let gpus = GPUDiscovery.simulated(2, node: "n")
        let id = JobID(number: 7)
        for second in stride(from: 0.0, to: 60, by: 7.3) {
            let t = TelemetryCollector.simulated(gpus, holders: [.init(job: id, gpus: [1], session: 1)], now: 1_800_000_000 + second)
            #expect(t[0].utilization! < 5 && t[0].processes.isEmpty)
            #expect(t[1].utilization! > 70 && t[1].memoryUsedMB! > 10_000 && t[1].processes.first?.jobId == id)
            #expect(!t[0].inUseOutside && !t[1].inUseOutside)
        }
        // As busy as the job's processes keep a CPU: a job that sleeps leaves them idle.
        let sleeping = TelemetryCollector.simulated(gpus, holders: [.init(job: id, gpus: [1], session: 1)], now: 1_800_000_000, activity: [id: 0])
        #expect(sleeping[1].utilization! < 1 && sleeping[1].powerW! < 70 && sleeping[1].processes.first?.jobId == id)
        let half = TelemetryCollector.simulated(gpus, holders: [.init(job: id, gpus: [1], session: 1)], now: 1_800_000_000, activity: [id: 0.5])
        #expect(half[1].utilization! > 35 && half[1].utilization! < 55)
        let a = TelemetryCollector.simulated(gpus, holders: [], now: 1_800_000_000)
        let b = TelemetryCollector.simulated(gpus, holders: [], now: 1_800_000_003)
        #expect(a != b, "the numbers change")
    }
}
