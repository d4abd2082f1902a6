import ArgumentParser
import Foundation
import MgpuCore
import MgpuWire

extension Mgpu {
    struct Queue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "queue",
            abstract: "List jobs (pending, running, and the last 20 that ended in the last 5 minutes) and nodes.")

        @OptionGroup var client: ClientOptions

        @Flag(help: "Print the master's answer as JSON, for scripts.")
        var json = false

        func run() async throws {
            // The master's bytes as they are, JSON or the table it renders: decoding 10,000 jobs to encode them again,
            // or making a String of a megabyte, was most of the time.
            var bytes = try await client.call { json ? try await $0.queueJSON() : try await $0.queueTableBytes() }
            bytes.append(UInt8(ascii: "\n"))
            FileHandle.standardOutput.write(Data(bytes))
        }
    }
}
