import ArgumentParser
import Foundation
import MgpuClient
import MgpuWire

extension Mgpu {
    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a job's output: its stdout to stdout, its stderr to stderr.")

        @OptionGroup var client: ClientOptions

        @Flag(name: .shortAndLong, help: "Follow the output until the job ends.")
        var follow = false

        @Argument(help: "The job id.")
        var id: String

        func validate() throws { try validateJobIDs([id]) }

        func run() async throws {
            do {
                try await follow(client.client)
            } catch {
                throw CLIError.from(error, client: client)
            }
        }

        func follow(_ master: MasterClient) async throws {
            var info = try await master.job(id)
            var offsets: [String: Int64] = [:]
            var done: Set<String> = []
            while true {
                let ranks = max(1, info.parts.count)
                var progressed = false
                for rank in 0..<ranks {
                    for stream in StreamName.allCases {
                        let key = "\(rank).\(stream.rawValue)"
                        if done.contains(key) { continue }
                        let out = try await master.output(job: id, rank: rank, stream: stream, offset: offsets[key] ?? 0, wait: 0)
                        if !out.bytes.isEmpty {
                            write(out.bytes, to: stream == .stdout ? FileHandle.standardOutput : FileHandle.standardError,
                                  prefix: ranks > 1 ? "\(rank): " : nil)
                            offsets[key] = (offsets[key] ?? 0) + Int64(out.bytes.count)
                            progressed = true
                        }
                        if out.complete { done.insert(key) }
                    }
                }
                if done.count == ranks * 2 || (!follow && !progressed) { return }
                if !progressed {
                    // Wait at the master for new output or a state change.
                    _ = try await master.output(job: id, rank: 0, stream: .stdout, offset: offsets["0.stdout"] ?? 0, wait: 10)
                    info = try await master.job(id)
                }
            }
        }

        func write(_ bytes: [UInt8], to handle: FileHandle, prefix: String?) {
            guard let prefix else { handle.write(Data(bytes)); return }
            var out: [UInt8] = []
            var atStart = true
            for b in bytes {
                if atStart { out.append(contentsOf: Array(prefix.utf8)) }
                out.append(b)
                atStart = b == 10
            }
            handle.write(Data(out))
        }
    }
}
