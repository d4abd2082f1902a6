import ArgumentParser
import Foundation
import MgpuWire

extension Mgpu {
    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "logs",
            abstract: "Print a job's output: its stdout to stdout, its stderr to stderr.")

        @OptionGroup var client: ClientOptions

        @Flag(name: .shortAndLong, help: "Follow the output until the job ends.")
        var follow = false

        @Argument(help: "The job id.")
        var id: String

        func validate() throws { try validateJobIDs([id]) }

        func run() async throws {
            do {
                var follower = JobFollower(master: try client.client, id: id)
                _ = try await follower.stream(follow: follow)
            } catch {
                throw CLIError.from(error, client: client)
            }
        }
    }
}
