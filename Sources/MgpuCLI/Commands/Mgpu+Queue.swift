import ArgumentParser
import Foundation
import MgpuCore
import MgpuWire

extension Mgpu {
    struct Queue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "queue",
            abstract: "List jobs (pending, running, and those ended in the last 5 minutes) and nodes.")

        @OptionGroup var client: ClientOptions

        @Flag(help: "Print the master's answer as JSON, for scripts.")
        var json = false

        func run() async throws {
            if json {
                try printJSON(try await client.call { try await $0.queue() })
                return
            }
            // The master renders the table: no JSON of every job to encode, send and decode.
            print(try await client.call { try await $0.queueTable() })
        }
    }
}
