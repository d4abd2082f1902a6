import Foundation
import MgpuSupervisor
import Testing

/// The microbenchmarks (`mgpu-bench`, run by `bench/run --scale`) run, each once: every one of them checks what it
/// computed (a listing of all 10,000 jobs, 1,000 ids for 1,000 jobs...), so a hot path broken since shows here
/// rather than as a fast figure.
@Suite struct BenchmarkTests {
    @Test func everyMicrobenchmarkRunsAndChecksItsResult() throws {
        let bench = URL(fileURLWithPath: mgpuBinary).deletingLastPathComponent().appendingPathComponent("mgpu-bench").path
        let run = try Spawn.capture([bench, "--allow-debug-build", "--iterations", "1", "--warmup-iterations", "0",
                                     "--format", "json", "--quiet"], timeout: 120)
        #expect(run.status == 0, "mgpu-bench: \(run.output.suffix(2000))")
        struct Report: Decodable {
            struct Figure: Decodable { let name: String; let time: Double }
            let benchmarks: [Figure]
        }
        let names = try JSONDecoder().decode(Report.self, from: Data(run.output.utf8)).benchmarks.map(\.name)
        for suite in ["scheduler.", "master.", "wire."] {
            #expect(names.contains { $0.hasPrefix(suite) }, "no \(suite) figure in \(names)")
        }
        #expect(names.count == 19, "\(names)")
    }
}
