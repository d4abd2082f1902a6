import Foundation
import Logging
import MgpuConfig
import MgpuCore
import MgpuMaster
import ServiceLifecycle
import UnixSignals

/// SIGHUP: the master reads its config file's [policy] again (policy, default_time, max_time, fair_share_half_life,
/// age_scale) and applies it at the next pass, without a restart. What was given as a flag keeps the flag's value; a
/// file that no longer reads is logged and changes nothing.
struct PolicyReloadService: Service {
    let path: String
    let state: MasterState
    let logger: Logger
    /// The policy the master started with (defaults, file, flags), and the policy keys given as flags.
    let started: SharingPolicy
    let flagged: Set<String>

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals { await reload() }
        }
    }

    func reload() async {
        do {
            var policy = try ConfigFile(path: path).policy(over: SharingPolicy())
            if flagged.contains("policy") { policy.order = started.order }
            if flagged.contains("default_time") { policy.defaultTime = started.defaultTime }
            if flagged.contains("max_time") { policy.maxTime = started.maxTime }
            if flagged.contains("fair_share_half_life") { policy.halfLife = started.halfLife }
            if flagged.contains("age_scale") { policy.ageScale = started.ageScale }
            await state.setPolicyTimes(policy)
        } catch {
            logger.error("policy not reloaded: \(error)", metadata: ["config": "\(path)"])
        }
    }

    /// The policy keys given as flags on this command line.
    static func flaggedKeys(_ arguments: [String]) -> Set<String> {
        var keys = Set<String>()
        for key in ConfigFile.policyKeys {
            let flag = "--" + key.replacingOccurrences(of: "_", with: "-")
            if arguments.contains(where: { $0 == flag || $0.hasPrefix(flag + "=") }) { keys.insert(key) }
        }
        return keys
    }
}
