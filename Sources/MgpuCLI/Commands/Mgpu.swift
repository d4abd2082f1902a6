import ArgumentParser
import CMgpuSpawn
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import MgpuWire

public struct Mgpu: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mgpu",
        abstract: "A GPU cluster job scheduler: queue jobs, hand out GPUs, run and watch them.",
        discussion: """
            On one workstation:  mgpu up            (master + local agent; GPUs auto-detected)
            Then:                mgpu submit --gpus 1 "python train.py"; mgpu queue; mgpu logs -f JOBID
            Clients find the master via --host/--port, then MGPU_MASTER_HOST/MGPU_MASTER_PORT, then localhost:8080.
            """,
        version: "mgpu \(mgpuVersion) (commit \(String(cString: mgpu_build_commit())))",
        subcommands: [Up.self, Master.self, Node.self, Submit.self, Sbatch.self, Srun.self, Attach.self, Queue.self, History.self, Report.self, Nodes.self, Top.self, Dashboard.self, Admin.self, Cancel.self, Wait.self, Logs.self, Relay.self, Sim.self, Config.self]
    )

    public init() {}

    /// Parses and runs, printing errors as one line: exit 2 for bad arguments or an unreachable master.
    public static func runMain() async -> Never {
        do {
            var command = try parseAsRoot(try ConfigArguments.apply(Array(CommandLine.arguments.dropFirst())))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Glibc.exit(0)
        } catch let error as CLIError {
            if !error.message.isEmpty { printError(error.message) }
            Glibc.exit(error.exitCode)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                // --help, --version
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Glibc.exit(2)
            }
            printError("\(error)")
            Glibc.exit(code.rawValue)
        }
    }
}
