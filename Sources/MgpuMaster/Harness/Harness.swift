import Foundation
import Logging
import MgpuCore
import MgpuWire

/// The master, in process, with no cluster: the real `MasterState` over a `MemoryStore`, a `ManualClock` and simulated
/// agents that are plain values (Nomad's scheduler Harness is the model). Protocol scenarios run here in virtual time,
/// deterministically and fast; `mgpu sim` replays traces through it.
public final class Harness {
    public let clock: ManualClock
    public let store: MemoryStore
    public let config: MasterConfig
    public private(set) var master: MasterState
    public var agents: [String: SimulatedAgent] = [:]
    let logger: Logger
    let seed: UInt64
    private var restarts: UInt64 = 0

    /// `nodeTimeout` and `nodeLostAfter` as `mgpu master` takes them; the state dir (job output) is a new temporary one.
    /// `seed` makes job ids, and so a whole run, repeatable.
    public init(nodeTimeout: Double = 30, nodeLostAfter: Double = 600, seed: UInt64 = 1, configure: (inout MasterConfig) -> Void = { _ in },
                logger: Logger = Logger(label: "mgpu.harness", factory: { _ in SwiftLogNoOpLogHandler() })) throws {
        let dir = NSTemporaryDirectory() + "mgpu-harness-\(UUID().uuidString.prefix(8))"
        var config = MasterConfig(stateDir: dir, nodeTimeout: nodeTimeout, nodeLostAfter: nodeLostAfter)
        configure(&config)
        self.config = config
        self.clock = ManualClock()
        self.store = MemoryStore()
        self.logger = logger
        self.seed = seed
        let clock = self.clock
        self.master = try MasterState(config: config, store: store, logger: logger, clock: { clock.now }, seed: seed)
    }

    public var now: Double { clock.now }

    /// A new master over the same store and clock, as after a crash and restart.
    public func restartMaster() throws {
        let clock = self.clock
        restarts += 1
        master = try MasterState(config: config, store: store, logger: logger, clock: { clock.now }, seed: seed &+ restarts)
    }

    /// Adds a node: its agent registers and reports once, as a real one does (a node takes no work before its agent's
    /// first report).
    @discardableResult
    public func addNode(_ id: String, gpus: Int, cpuSlots: Int = 4, plan: @escaping SimulatedAgent.Plan = { _ in nil }) async throws -> SimulatedAgent {
        agents[id] = SimulatedAgent(nodeId: id, gpus: gpus, cpuSlots: cpuSlots, plan: plan)
        try await sync(id)
        return agents[id]!
    }

    public func register(_ id: String) async throws {
        guard var agent = agents[id] else { return }
        _ = try await master.register(agent.registration(), peerAddress: nil)
        agent.registered()
        agents[id] = agent
    }

    /// Submits one job as `user` (a template for many with `commands`).
    @discardableResult
    public func submit(_ command: String = "train", user: String = "alice", request: ResourceRequest = ResourceRequest(gpusPerNode: 1),
                       configure: (inout JobSpec) -> Void = { _ in }) async throws -> JobID {
        var spec = JobSpec(name: nil, user: user, command: command, workdir: "/tmp", environment: [:], request: request)
        configure(&spec)
        return try await master.submit([spec])[0]
    }

    /// One report of a node's agent, and what it does with the answer (registering first when it must).
    @discardableResult
    public func sync(_ id: String) async throws -> SyncResponse {
        if agents[id]?.needsRegistration == true { try await register(id) }
        guard var agent = agents[id] else { return SyncResponse() }
        let request = agent.report(now: now)
        let response = try await master.sync(request)
        agent.apply(response, now: now)
        agents[id] = agent
        return response
    }

    /// Every agent reports once, in node order.
    public func syncAll() async throws {
        for id in agents.keys.sorted() { try await sync(id) }
    }

    /// Reports until nothing changes (at most `rounds`): starts, stops and acknowledgements settle.
    public func settle(rounds: Int = 4) async throws {
        for _ in 0..<rounds { try await syncAll() }
    }

    /// Time passes (nobody reports meanwhile); the master's liveness tick runs.
    public func advance(_ seconds: Double) async {
        clock.advance(seconds)
        await master.checkLiveness()
    }

    public func job(_ id: JobID) async -> JobInfo? { await master.jobInfo(id) }

    public func state(_ id: JobID) async -> JobState? { await job(id)?.state }

    public func node(_ id: String) async -> NodeInfo? { await master.nodeInfos(now: now).first { $0.id == id } }
}
