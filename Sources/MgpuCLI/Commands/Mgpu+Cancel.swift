import ArgumentParser
import Foundation
import MgpuWire

extension Mgpu {
    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cancel",
            abstract: "Cancel jobs: pending ones at once; running ones get SIGTERM, then SIGKILL after their grace period.")

        @OptionGroup var client: ClientOptions

        @Argument(help: "Job ids.")
        var ids: [String] = []

        func validate() throws {
            if ids.isEmpty { throw ValidationError("give at least one job id, e.g. mgpu cancel F68FAFEC") }
            try validateJobIDs(ids)
        }

        func run() async throws {
            let response = try await client.call { try await $0.cancel(ids) }
            var unknown: [String] = []
            var denied: [String] = []
            for result in response.results {
                switch result.outcome {
                case .cancelled: say("job \(result.id) cancelled")
                case .cancelling: say("job \(result.id) cancelling: its processes get SIGTERM, then SIGKILL")
                case .alreadyFinished: say("job \(result.id) already ended (\(result.state?.rawValue ?? "?"))")
                case .unknown: unknown.append(result.id)
                case .denied: denied.append(result.id)
                }
            }
            if !denied.isEmpty {
                throw CLIError("not yours to cancel: \(denied.joined(separator: ", ")) (only a job's owner or an admin can cancel it)")
            }
            if !unknown.isEmpty {
                throw CLIError("no such job: \(unknown.joined(separator: ", "))")
            }
        }
    }
}
