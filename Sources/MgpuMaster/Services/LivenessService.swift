import ServiceLifecycle

/// Checks node heartbeats once a tick: silent nodes go DOWN, then lost.
struct LivenessService: Service {
    let state: MasterState
    let interval: Double

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(interval * 1000))) }
            await state.checkLiveness()
        }
    }
}
