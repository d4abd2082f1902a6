import MgpuCore
import Testing

@Suite struct NodeHealthTests {
    static func sample(_ unhealthy: [String?], check: String? = nil) -> NodeTelemetry {
        var t = NodeTelemetry(time: 1, gpus: unhealthy.enumerated().map { i, reason in
            var g = GPUTelemetry(index: i)
            g.unhealthy = reason
            return g
        })
        t.healthCheck = check
        return t
    }

    @Test func aNodeFailsWhenItsCheckFailsOrEveryGPUIsUnhealthy() {
        #expect(NodeHealth.failure(nil, gpuCount: 2) == nil, "no sample: nothing known")
        #expect(NodeHealth.failure(Self.sample([nil, nil]), gpuCount: 2) == nil)
        #expect(NodeHealth.failure(Self.sample([nil, "GPU is lost"]), gpuCount: 2) == nil, "one GPU left: it still serves")
        #expect(NodeHealth.failure(Self.sample(["GPU is lost", "row remapping pending"]), gpuCount: 2)
                == "every GPU unhealthy: gpu0 GPU is lost; gpu1 row remapping pending")
        #expect(NodeHealth.failure(Self.sample([], check: "disk /scratch full"), gpuCount: 0) == "health check failed: disk /scratch full")
        #expect(NodeHealth.failure(Self.sample([]), gpuCount: 0) == nil, "a CPU-only node has no GPU to fail")
        #expect(NodeHealth.failure(Self.sample(["lost"]), gpuCount: 2) == nil, "a GPU not reported is not known to be unhealthy")
    }

    @Test func onlyItsOwnDrainIsLifted() {
        let admin = NodeDrain(reason: "swap GPU 2", by: "root", at: 1)
        let own = NodeDrain(reason: "health check failed: x", by: NodeHealth.drainer, at: 1)
        #expect(NodeHealth.change(current: nil, failure: "health check failed: x") == .drain("health check failed: x"))
        #expect(NodeHealth.change(current: nil, failure: nil) == .none)
        #expect(NodeHealth.change(current: own, failure: nil) == .resume)
        #expect(NodeHealth.change(current: own, failure: "health check failed: x") == .none, "the same reason: nothing to write")
        #expect(NodeHealth.change(current: own, failure: "health check failed: y") == .drain("health check failed: y"))
        #expect(NodeHealth.change(current: admin, failure: nil) == .none, "an admin's drain stays")
        #expect(NodeHealth.change(current: admin, failure: "health check failed: x") == .none, "and keeps its reason")
        #expect(NodeHealth.change(current: nil, failure: String(repeating: "x", count: 500)) == .drain(String(repeating: "x", count: 200)))
    }

    @Test func reasonsAreMadeSafeToShow() {
        var t = Self.sample(["bad\u{1B}[2J\u{9B}31m\u{202E}dlrow\u{7F}"], check: "line one\nline two" + String(repeating: "x", count: 300))
        t = t.sanitized()
        #expect(t.gpus[0].unhealthy == "bad [2J 31m dlrow ")
        #expect(t.healthCheck?.hasPrefix("line one line two") == true && t.healthCheck?.unicodeScalars.count == 200)
    }

    @Test func unhealthyGPUsAreUnavailableWhateverTheForeignPolicy() {
        var t = Self.sample([nil, "GPU is lost", nil])
        t.avoidForeign = false
        t.gpus[2].inUseOutside = true
        #expect(t.unavailableGPUs == [1])
        t.avoidForeign = true
        #expect(t.unavailableGPUs == [1, 2])
        #expect(t.unhealthyGPUs == [1])
    }
}
