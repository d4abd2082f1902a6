import Benchmark

// Microbenchmarks of mgpu's hot paths, so that a regression shows as a number: `bench/run --scale` runs them (as
// built by scripts/build's flags), `mgpu-bench --help` lists the options (--filter, --min-time, --format json...).
// Each benchmark checks what it computed, so a broken path fails instead of getting fast.
Benchmark.main([schedulerBenchmarks(), try await masterBenchmarks(), wireBenchmarks()])
