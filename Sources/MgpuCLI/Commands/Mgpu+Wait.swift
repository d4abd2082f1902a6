import ArgumentParser
import Foundation
import MgpuWire

extension Mgpu {
    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "wait",
            abstract: "Wait until jobs end; print one line each; exit with the first failing job's exit code (0 if all completed).",
            discussion: """
                mgpu wait 3F2A9C01 7B00C2D4 && echo all done
                mgpu wait 3F2A9C01 --timeout 3600      exits 124 if a job is still running then
                An array job's id waits for all its tasks; ID_N for one.
                """)

        @OptionGroup var client: ClientOptions

        @Argument(help: "Job ids.")
        var ids: [String] = []

        @Option(help: ArgumentHelp("Give up after this many seconds (exit 124).", valueName: "s"))
        var timeout: Double?

        func validate() throws {
            if ids.isEmpty { throw ValidationError("give at least one job id, e.g. mgpu wait F68FAFEC") }
            try validateJobIDs(ids)
            if let timeout, !(timeout > 0 && timeout.isFinite) { throw ValidationError("--timeout must be more than 0 seconds") }
        }

        func run() async throws {
            let deadline = timeout.map { Date().timeIntervalSince1970 + $0 }
            var firstFailure: Int32?
            for id in ids {
                var answer: WaitResponse
                repeat {
                    let left = deadline.map { $0 - Date().timeIntervalSince1970 } ?? 60
                    if left <= 0 { throw CLIError("timed out waiting for job \(id) (still \(try await state(id)))", exitCode: 124) }
                    answer = try await client.call { try await $0.waitForEnd(id, seconds: min(60, left)) }
                } while !answer.state.isTerminal
                say(Self.line(answer))
                if answer.exitCode != 0 && firstFailure == nil { firstFailure = answer.exitCode }
            }
            if let firstFailure { throw CLIError.exit(firstFailure) }
        }

        func state(_ id: String) async throws -> String {
            try await client.call { try await $0.waitForEnd(id, seconds: 0) }.state.rawValue
        }

        static func line(_ answer: WaitResponse) -> String {
            var parts = [answer.exit?.summary, answer.elapsed.map { "ran \(formatElapsed($0))" }].compactMap { $0 }
            if answer.state != .completed, let reason = answer.reason, !parts.contains(reason) { parts.append(reason) }
            return "\(answer.id) \(answer.state.rawValue)" + (parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")")
        }
    }
}
