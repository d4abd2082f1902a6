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
            if json {
                // The master's bytes as they are: decoding 10,000 jobs to encode them again was most of the time.
                var bytes = try await client.call { try await $0.queueJSON() }
                bytes.append(UInt8(ascii: "\n"))
                FileHandle.standardOutput.write(Data(bytes))
                return
            }
            // The master renders the table: no JSON of every job to encode, send and decode; its bytes are written out
            // as they came (a String of them was a megabyte checked and copied again for 10,000 jobs).
            var bytes = try await client.call { try await $0.queueTableBytes() }
            bytes.append(UInt8(ascii: "\n"))
            FileHandle.standardOutput.write(Data(bytes))
        }
    }
}
