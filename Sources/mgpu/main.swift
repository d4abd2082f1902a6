import CMgpuSpawn
import Glibc
import MgpuCLI
import MgpuSupervisor

// At most two malloc arenas, before any other thread exists: glibc gives each thread that meets a locked arena one of
// its own (up to 8 per core), and freed memory stays scattered over them. A master after bench/run's sections and
// 10,000 pending held 37-43 MiB of anonymous memory in six arenas, 29 in two, with submissions as fast (API submit, 32
// clients, in turn: 9,116 / 9,550 jobs/s with glibc's default, 9,367 / 9,409 with two; one arena: 7,839 / 9,046).
// MALLOC_ARENA_MAX in the environment still decides where it is set.
if getenv("MALLOC_ARENA_MAX") == nil { _ = mgpu_limit_arenas(2) }

// The per-job supervisor runs in this same binary, in a hidden mode, before any argument parsing.
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "_supervise" {
    Supervisor.main(Array(CommandLine.arguments.dropFirst(2)))
}
await Mgpu.runMain()
