import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

/// Schemathesis (from PyPI) against a live master: generated valid and invalid requests for every operation in
/// docs/openapi.yaml, bounded in time. It must find no 5xx, no response that breaks the document, and no
/// request that breaks the document yet is accepted. `MGPU_FUZZ_SECONDS` sets the time per run (default 45).
/// Inside EndToEndTests, so that its load does not run beside the timing-sensitive end-to-end tests.
extension EndToEndTests {
@Suite struct APIFuzzTests {
    static let document = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml").path

    @Test func schemathesisFindsNoServerErrorAndNoSchemaViolation() async throws {
        let which = try await TestCluster(name: "which").mgpu([], viaShell: "command -v schemathesis")
        try #require(which.status == 0, "schemathesis is not installed: `pip install schemathesis` (scripts/test does it)")

        // A long node timeout: the node below never syncs and must stay UP so that jobs keep being accepted.
        let cluster = try await TestCluster.start(agents: [:], master: ["--node-timeout", "3600", "--node-lost-after", "7200"])
        defer { cluster.stop() }
        // A node that registers and never runs anything: accepted jobs are placed on it and never executed, so no
        // generated command runs on this machine.
        let secret = try #require(cluster.read("state/cluster.secret")).trimmingCharacters(in: .whitespacesAndNewlines)
        let agentClient = MasterClient(host: "127.0.0.1", port: cluster.port, token: secret)
        let enrolled = try await agentClient.register(RegisterRequest(
            nodeId: "paper", incarnation: "fuzz",
            gpus: (0..<8).map { GPU(index: $0, uuid: "SIM-paper-\($0)", name: "Simulated GPU", memoryMB: 1024, simulated: true) },
            cpuSlots: 8, advertiseAddress: nil))
        let credential = try #require(enrolled.credential, "a new node is given its credential")

        let seconds = Int(ProcessInfo.processInfo.environment["MGPU_FUZZ_SECONDS"] ?? "") ?? 45
        let checks = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
            + "response_schema_conformance,negative_data_rejection"
        // Users' operations with the admin's token; agents' with the node credential of "paper". The event stream never ends
        // by itself and is left to the dashboard tests; a job's wait holds a request up to 60 s for a job that never ends
        // here (no agent), and is left to `mgpu wait`'s test. The agents' operations have no links between them, so no
        // stateful phase there. One worker: two threads in Hypothesis can trip a CPython 3.11 ast.parse bug
        // ("AST constructor recursion depth mismatch"), an error of the tool, not of the master.
        let runs = [("user", try #require(cluster.token), "--exclude-path-regex '^/v1/(agent/|events|jobs/[^/]+/wait)'"),
                    ("agent", credential, "--include-path-regex '^/v1/agent/' --phases examples,coverage,fuzzing")]
        // The two runs share nothing but the master: side by side, each for its full time.
        let document = Self.document, environment = cluster.cliEnvironment, dir = cluster.dir
        let results = try await withThrowingTaskGroup(of: (String, CommandResult).self) { group in
            for (who, token, filter) in runs {
                var env = environment
                env["FUZZ_TOKEN"] = token
                let script = "schemathesis run '\(document)' --url \"http://127.0.0.1:$MGPU_MASTER_PORT\" "
                    + "-H \"Authorization: Bearer $FUZZ_TOKEN\" \(filter) --checks \(checks) --max-time \(seconds) "
                    + "--workers 1 --request-timeout 20 --no-color"
                group.addTask { [env] in
                    (who, try await runShell(script, environment: env, out: "\(dir)/fuzz-\(who)", timeout: Double(seconds) + 180))
                }
            }
            return try await group.reduce(into: [(String, CommandResult)]()) { $0.append($1) }
        }
        for (who, result) in results {
            #expect(result.status == 0, "schemathesis (\(who) operations) failed:\n\(result.stdout.suffix(8000))\n\(result.stderr.suffix(2000))")
        }

        // The master still serves, and every job it accepted keeps the rules a submission is checked against.
        let queue = try await cluster.client.queue()
        for job in queue.jobs {
            #expect(job.workdir.hasPrefix("/") && !job.command.utf8.contains(0) && job.request.gpusPerNode >= 0,
                    "job \(job.id) should have been refused: \(job.workdir.debugDescription) \(job.command.debugDescription)")
        }
    }
}
}

/// Runs a shell command line with `environment`, its output in `out` and `out.err`.
func runShell(_ script: String, environment: [String: String], out: String, timeout: Double) async throws -> CommandResult {
    let pid = try Spawn.start(["/bin/sh", "-c", script], environment: environment.map { "\($0.key)=\($0.value)" },
                              stdout: .path(out, flags: O_WRONLY | O_CREAT | O_TRUNC),
                              stderr: .path(out + ".err", flags: O_WRONLY | O_CREAT | O_TRUNC), newSession: false)
    let status = try await waitForExit(pid, timeout: timeout)
    return CommandResult(status: status, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: out + ".err", encoding: .utf8)) ?? "")
}
