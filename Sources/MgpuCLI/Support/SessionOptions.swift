import ArgumentParser

/// How a foreground client (`srun`, `submit --interactive`, `attach`) treats time and a flaky master.
struct SessionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("End the interactive session after S seconds: the job is cancelled and the client says so.", valueName: "S"))
    var sessionTimeout: Double = 7200

    @Option(help: ArgumentHelp("How long one connection attempt to the master may take, in seconds.", valueName: "S"))
    var connectionTimeout: Double = 30

    @Option(help: ArgumentHelp("How long to wait with no output and no state change before checking the job and the connection again, in seconds.", valueName: "S"))
    var maxWaitTime: Double = 300

    @Option(help: ArgumentHelp("After N failed checks or reconnects in a row, give up, leave the job running, and say how to reattach.", valueName: "N"))
    var maxConsecutiveTimeouts: Int = 30

    func validate() throws {
        if sessionTimeout <= 0 { throw ValidationError("--session-timeout must be positive") }
        if connectionTimeout <= 0 || connectionTimeout > 3600 { throw ValidationError("--connection-timeout must be 0-3600 s") }
        if maxWaitTime <= 0 { throw ValidationError("--max-wait-time must be positive") }
        if maxConsecutiveTimeouts < 1 { throw ValidationError("--max-consecutive-timeouts must be 1 or more") }
    }
}
