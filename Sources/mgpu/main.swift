import MgpuCLI
import MgpuSupervisor

// The per-job supervisor runs in this same binary, in a hidden mode, before any argument parsing.
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "_supervise" {
    Supervisor.main(Array(CommandLine.arguments.dropFirst(2)))
}
await Mgpu.runMain()
