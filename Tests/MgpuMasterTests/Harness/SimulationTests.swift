import Foundation
import MgpuCore
import MgpuMaster
import MgpuWire
import Testing

@Suite struct SimulationTests {
    static let labTrace = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("bench/traces/lab-64gpu-7d.csv").path

    @Test func aBadTraceIsOneLineNamingItsPlace() {
        #expect(throws: RequestError("t.csv:1: the header must name job_id,user,submit_time,num_gpu,duration,time_limit; missing num_gpu")) {
            try Trace.parse("job_id,user,submit_time,duration,time_limit\n1,a,0,5,0\n", name: "t.csv")
        }
        #expect(throws: RequestError.self) { try Trace.parse("job_id,user,submit_time,num_gpu,duration,time_limit\n1,a,soon,1,5,0\n") }
        #expect(throws: RequestError.self) { try Trace.parse("job_id,user,submit_time,num_gpu,duration,time_limit\n") }
        let jobs = try? Trace.parse("job_id,user,submit_time,num_gpu,duration,time_limit\r\n7,a,1.5,2,60,0\r\n8,b,2,16,30,90\r\n")
        #expect(jobs == [TraceJob(id: "7", user: "a", submit: 1.5, gpus: 2, duration: 60, timeLimit: nil),
                         TraceJob(id: "8", user: "b", submit: 2, gpus: 16, duration: 30, timeLimit: 90)])
    }

    /// Serial jobs on one GPU: each waits for the one before, and whole-node jobs take whole nodes.
    @Test func aSmallReplayAddsUp() async throws {
        let trace = [TraceJob(id: "a", user: "x", submit: 0, gpus: 1, duration: 100, timeLimit: nil),
                     TraceJob(id: "b", user: "x", submit: 0, gpus: 1, duration: 50, timeLimit: nil),
                     TraceJob(id: "c", user: "y", submit: 10, gpus: 2, duration: 10, timeLimit: 20)]
        var fifo = SharingPolicy()
        fifo.order = .fifo
        await #expect(throws: RequestError("trace job c cannot run on 1 × 1 GPUs: the job asks for 2 nodes but the cluster has 1")) {
            _ = try await Simulation.run(trace, nodes: 1, gpusPerNode: 1, policy: fifo)
        }
        var serial = trace
        serial[2].gpus = 1
        let r = try await Simulation.run(serial, nodes: 1, gpusPerNode: 1, policy: fifo)
        #expect(r.jobs == 3 && r.start_order == ["a", "b", "c"])
        #expect(r.wait_max == 150 - 10 && abs(r.wait_mean - (0 + 100 + 140) / 3) < 1e-9, "\(r.wait_mean)")
        #expect(abs(r.utilization - (100 + 50 + 10) / 160) < 1e-9)
        let two = try await Simulation.run(trace, nodes: 2, gpusPerNode: 1, policy: SharingPolicy())
        #expect(two.start_order == ["a", "b", "c"] && two.users["y"]?.wait_mean == 90, "c needs both nodes: it waits for a (ends at 100)")
    }

    /// The acceptance figures, on a week of a 64-GPU lab (bench/traces): the default policy against FIFO.
    @Test func theDefaultPolicyBeatsFIFOAndBoundsTheTail() async throws {
        let trace = try Trace.parse(String(contentsOfFile: Self.labTrace, encoding: .utf8))
        var fifoPolicy = SharingPolicy()
        fifoPolicy.order = .fifo
        let fifo = try await Simulation.run(trace, nodes: 8, gpusPerNode: 8, policy: fifoPolicy)
        let fair = try await Simulation.run(trace, nodes: 8, gpusPerNode: 8, policy: SharingPolicy())
        func h(_ s: Double) -> String { String(format: "%.2f h", s / 3600) }
        print("lab trace: FIFO mean \(h(fifo.wait_mean)) light p95 \(h(fifo.light_half_wait_p95)) util \(fifo.utilization) max \(h(fifo.wait_max)); "
              + "fair share mean \(h(fair.wait_mean)) light p95 \(h(fair.light_half_wait_p95)) util \(fair.utilization) max \(h(fair.wait_max))")
        #expect(fifo.jobs == 1423 && fair.jobs == 1423)
        #expect(fair.wait_mean <= 0.3 * fifo.wait_mean, "mean wait \(h(fair.wait_mean)) vs FIFO \(h(fifo.wait_mean))")
        #expect(fair.light_half_wait_p95 <= 0.1 * fifo.light_half_wait_p95, "lighter half p95 \(h(fair.light_half_wait_p95)) vs \(h(fifo.light_half_wait_p95))")
        #expect(fair.utilization >= fifo.utilization, "utilization \(fair.utilization) vs \(fifo.utilization)")
        #expect(fair.wait_max <= fifo.wait_max, "longest wait \(h(fair.wait_max)) vs FIFO's \(h(fifo.wait_max))")
    }
}
