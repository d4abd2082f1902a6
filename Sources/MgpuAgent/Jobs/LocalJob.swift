import Foundation
import MgpuCore
import MgpuWire

/// One job part on this node, as the agent tracks it. Its directory holds everything needed to
/// re-adopt it after an agent restart:
///
///     work.json   the WorkItem the master sent
///     command     the shell command;  workdir  where it runs;  environ  its environment (NUL-separated)
///     pid         "SUPERVISOR_PID JOB_PID", written by the supervisor
///     stdout, stderr   the job's output;  stdin, stdin.eof  an interactive job's input
///     exit        "code N" | "signal N" | "error TEXT", written by the supervisor when the job ended
/// The folder and its files belong to the agent's user (mode 0700/0600); the job gets its streams as descriptors.
struct LocalJob: Sendable {
    var work: WorkItem
    var dir: String
    var supervisorPid: Int32
    /// The job's main process, which leads its process group, once known (read once from the supervisor's `pid`).
    var jobPid: Int32?
    /// This agent run started the supervisor: it is our child, so its pid stays ours until we reap it.
    var isChild = false
    var exit: ExitStatus?
    /// Bytes of each stream the master has acknowledged.
    var shipped: [StreamName: Int64] = [:]
    /// The master's size of each stream is not known yet (after adoption).
    var probed: Set<StreamName> = []
    var cancelSent = false
    /// Bytes of the client's stdin written to JOBDIR/stdin, and whether it was closed.
    var stdinOffset: Int64 = 0
    var stdinDone = false

    static func parseExit(_ text: String) -> ExitStatus? {
        var line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let timedOut = line.hasPrefix("timeout ")
        if timedOut { line.removeFirst("timeout ".count) }
        if line.hasPrefix("code "), let n = Int32(line.dropFirst(5)) { return ExitStatus(code: n, timedOut: timedOut ? true : nil) }
        if line.hasPrefix("signal "), let n = Int32(line.dropFirst(7)) { return ExitStatus(signal: n, timedOut: timedOut ? true : nil) }
        if line.hasPrefix("error ") { return ExitStatus(error: String(line.dropFirst(6))) }
        return nil
    }
}
