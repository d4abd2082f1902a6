import ArgumentParser
import Foundation
import MgpuConfig
import MgpuCore
import MgpuMaster
import MgpuWire

extension Mgpu {
    struct Sim: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sim",
            abstract: "Replay a job trace through mgpu's scheduler in virtual time and print waits, utilization and slowdown.",
            discussion: """
                mgpu sim --trace lab.csv --nodes 8 --gpus-per-node 8    (fair share)
                  ... --policy fifo                 (submission order, for comparison)
                  ... --config mgpu.toml            (its [policy]: shares, limits, times)
                The trace is CSV: job_id,user,submit_time,num_gpu,duration,time_limit
                (seconds; time_limit 0: none). Jobs with more GPUs than a node has run
                on whole nodes. The replay runs the master's own code (its state,
                scheduler and policy) with simulated agents, in virtual time: seconds
                for a week of a lab.
                """)

        @Option(help: ArgumentHelp("The trace (CSV).", valueName: "file")) var trace: String
        @Option(help: ArgumentHelp("Nodes in the simulated cluster.", valueName: "n")) var nodes: Int
        @Option(help: ArgumentHelp("GPUs on each node.", valueName: "n")) var gpusPerNode: Int
        @Option(help: ArgumentHelp("fair-share (the master's default; also: default) or fifo. Default: the config file's, else fair-share.", valueName: "policy"))
        var policy: SharingPolicy.Order?
        @Option(help: ArgumentHelp("A config file whose [policy] section (policy, times, [policy.accounts.NAME], [policy.users.NAME]) the replay uses, as the master would; flags win over it.", valueName: "file"))
        var config: String?
        @Option(help: ArgumentHelp("Time limit of jobs without one, as Slurm writes it (as mgpu master --default-time). Default: 7-00:00:00.", valueName: "limit"))
        var defaultTime: String?
        @Option(help: ArgumentHelp("Fair-share half-life (as mgpu master --fair-share-half-life). Default: 7-00:00:00.", valueName: "limit"))
        var fairShareHalfLife: String?
        @Option(help: ArgumentHelp("A waiting job gains the whole fair-share range of priority per this long (as mgpu master --age-scale). Default: 1-12:00:00.", valueName: "limit"))
        var ageScale: String?
        @Flag(help: "Print the figures as JSON.") var json = false

        func validate() throws {
            guard (1...100_000).contains(nodes) else { throw ValidationError("--nodes must be 1-100000, got \(nodes)") }
            guard (1...1024).contains(gpusPerNode) else { throw ValidationError("--gpus-per-node must be 1-1024, got \(gpusPerNode)") }
            for (flag, given) in [("--default-time", defaultTime), ("--fair-share-half-life", fairShareHalfLife), ("--age-scale", ageScale)]
            where given.map({ value in TimeLimit.parse(value) == nil || (flag != "--default-time" && (TimeLimit.parse(value) ?? nil) == nil) }) ?? false {
                let value = given!
                throw ValidationError("\(flag) takes MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS; got \(value.debugDescription)")
            }
        }

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: trace) else { throw CLIError("cannot read \(trace)", exitCode: 2) }
            let jobs: [TraceJob]
            do { jobs = try Trace.parse(String(decoding: data, as: UTF8.self), name: trace) } catch { throw CLIError(error.message, exitCode: 2) }
            var sharing = SharingPolicy()
            if let config {
                do { sharing = try ConfigFile(path: config).policy(over: sharing) } catch { throw CLIError(error.message, exitCode: 2) }
            }
            if let policy { sharing.order = policy }
            if let defaultTime { sharing.defaultTime = TimeLimit.parse(defaultTime) ?? sharing.defaultTime }
            if let fairShareHalfLife { sharing.halfLife = (TimeLimit.parse(fairShareHalfLife) ?? nil) ?? sharing.halfLife }
            if let ageScale { sharing.ageScale = (TimeLimit.parse(ageScale) ?? nil) ?? sharing.ageScale }
            let result: SimulationResult
            do {
                result = try await Simulation.run(jobs, nodes: nodes, gpusPerNode: gpusPerNode, policy: sharing)
            } catch let error as RequestError {
                throw CLIError(error.message, exitCode: 1)
            }
            if json { try printJSON(result); return }
            print(Self.render(result, policy: sharing.order, nodes: nodes, gpusPerNode: gpusPerNode))
        }

        static func hours(_ seconds: Double) -> String { String(format: "%.2f h", seconds / 3600) }

        static func render(_ r: SimulationResult, policy: SharingPolicy.Order, nodes: Int, gpusPerNode: Int) -> String {
            var lines = ["\(r.jobs) jobs on \(nodes) × \(gpusPerNode) GPUs, policy \(policy.rawValue) (replayed in \(String(format: "%.1f", r.replay_seconds)) s)",
                         String(format: "utilization      %.1f %%", r.utilization * 100),
                         "wait             mean \(hours(r.wait_mean)), p50 \(hours(r.wait_p50)), p95 \(hours(r.wait_p95)), max \(hours(r.wait_max))",
                         "lighter half     p95 wait \(hours(r.light_half_wait_p95))",
                         "completion time  mean \(hours(r.jct_mean))",
                         String(format: "slowdown         mean %.2f (bounded at 10 s)", r.slowdown_mean), ""]
            var table = Table(header: ["USER", "JOBS", "GPU-HOURS", "WAIT MEAN", "WAIT P95"])
            for (user, u) in r.users.sorted(by: { $0.value.gpu_hours > $1.value.gpu_hours }) {
                table.rows.append([user, "\(u.jobs)", String(format: "%.1f", u.gpu_hours), hours(u.wait_mean), hours(u.wait_p95)])
            }
            lines.append(table.render())
            return lines.joined(separator: "\n")
        }
    }
}
