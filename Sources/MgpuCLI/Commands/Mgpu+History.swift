import ArgumentParser
import Foundation
import MgpuCore
import MgpuWire

extension ReportGrouping: ExpressibleByArgument {}

/// A moment as a user writes it: "2h", "30m", "7d", "1w" ago; a date "2026-11-23", "2026-11-23 14:00"; "now".
enum Moment {
    static let usage = "a time ago (30m, 2h, 7d, 1w) or a date (2026-11-23, 2026-11-23 14:00)"

    static func parse(_ text: String, now: Double = Date().timeIntervalSince1970) -> Double? {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "now" { return now }
        if let unit = t.last, let n = Double(t.dropLast()), n >= 0, n.isFinite {
            switch unit {
            case "s": return now - n
            case "m": return now - n * 60
            case "h": return now - n * 3600
            case "d": return now - n * 86_400
            case "w": return now - n * 7 * 86_400
            default: break
            }
        }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        for format in ["yyyy-MM-dd", "yyyy-MM-dd HH:mm", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text.trimmingCharacters(in: .whitespaces)) { return date.timeIntervalSince1970 }
        }
        return nil
    }
}

extension Mgpu {
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "history",
            abstract: "List ended jobs with their accounting: GPU-hours, energy, utilisation, wait (as Slurm's sacct).",
            discussion: """
                mgpu history                         your last 50 jobs, newest first
                mgpu history --since 1d --state FAILED,TIMEOUT
                mgpu history --all-users --since 7d --csv > week.csv    (an admin; the CSV
                  replays with: mgpu sim --trace week.csv --nodes 8 --gpus-per-node 8)
                A user sees their own jobs; an admin anyone's. Jobs stay for mgpu master --history-days.
                """)

        @OptionGroup var client: ClientOptions

        @Option(help: ArgumentHelp("Only these users' jobs (comma-separated; others' need an admin).", valueName: "names"))
        var user: String?
        @Flag(help: "Everyone's jobs (an admin).") var allUsers = false
        @Option(help: ArgumentHelp("Only jobs that ended so: COMPLETED, FAILED, CANCELLED, NODE_FAIL, TIMEOUT (comma-separated).", valueName: "states"))
        var state: String?
        @Option(help: ArgumentHelp("Ended at or after: \(Moment.usage).", valueName: "time")) var since: String?
        @Option(help: ArgumentHelp("Ended before: \(Moment.usage).", valueName: "time")) var until: String?
        @Option(help: ArgumentHelp("Only jobs that ran on this node.", valueName: "node")) var node: String?
        @Option(help: ArgumentHelp("Only jobs of this name.", valueName: "name")) var name: String?
        @Option(name: [.customShort("n"), .long], help: ArgumentHelp("At most this many jobs (newest first).", valueName: "n"))
        var limit = 50
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: "Print CSV (its first columns are those mgpu sim --trace reads).") var csv = false

        func validate() throws {
            if json && csv { throw ValidationError("give --json or --csv, not both") }
            if allUsers && user != nil { throw ValidationError("give --user or --all-users, not both") }
            guard (1...1_000_000).contains(limit) else { throw ValidationError("-n must be 1-1000000, got \(limit)") }
            for (flag, value) in [("--since", since), ("--until", until)] {
                if let value, Moment.parse(value) == nil { throw ValidationError("\(flag) takes \(Moment.usage); got \(value.debugDescription)") }
            }
            if let state {
                for name in state.split(separator: ",") where JobState(rawValue: name.uppercased())?.isTerminal != true {
                    throw ValidationError("--state takes COMPLETED, FAILED, CANCELLED, NODE_FAIL or TIMEOUT (comma-separated); got \(String(name).debugDescription)")
                }
            }
        }

        func run() async throws {
            var query = HistoryQuery(limit: limit)
            query.users = allUsers ? ["*"] : user.map { $0.split(separator: ",").map(String.init) }
            query.states = state.map { $0.split(separator: ",").compactMap { JobState(rawValue: $0.uppercased()) } }
            query.since = since.flatMap { Moment.parse($0) }
            query.until = until.flatMap { Moment.parse($0) }
            query.node = node
            query.name = name
            let history = try await client.call { try await $0.history(query) }
            if json { try printJSON(history); return }
            if csv { print(history.renderCSV()); return }
            print(history.renderTable(now: Date().timeIntervalSince1970))
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "report",
            abstract: "Sum ended jobs per user, account, node or GPU type: GPU-hours, energy, utilisation, waits, failures (as Slurm's sreport).",
            discussion: """
                mgpu report                          the last 30 days, per user
                mgpu report --since 7d --by gpu-type --csv
                A user's report covers their own jobs; an admin's everyone's.
                """)

        @OptionGroup var client: ClientOptions

        @Option(help: ArgumentHelp("From: \(Moment.usage).", valueName: "time")) var since = "30d"
        @Option(help: ArgumentHelp("Until: \(Moment.usage) (default: now).", valueName: "time")) var until = "now"
        @Option(help: ArgumentHelp("Group by user, account, node or gpu-type.", valueName: "what")) var by: ReportGrouping = .user
        @Option(help: ArgumentHelp("Only these users' jobs (comma-separated; others' need an admin).", valueName: "names"))
        var user: String?
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: "Print CSV.") var csv = false

        func validate() throws {
            if json && csv { throw ValidationError("give --json or --csv, not both") }
            for (flag, value) in [("--since", since), ("--until", until)] where Moment.parse(value) == nil {
                throw ValidationError("\(flag) takes \(Moment.usage); got \(value.debugDescription)")
            }
        }

        func run() async throws {
            let now = Date().timeIntervalSince1970
            let from = Moment.parse(since, now: now)!, to = Moment.parse(until, now: now)!
            let users = user.map { $0.split(separator: ",").map(String.init) }
            let report = try await client.call { try await $0.report(since: from, until: to, by: by, users: users) }
            if json { try printJSON(report); return }
            if csv { print(report.renderCSV()); return }
            print(report.renderTable())
        }
    }
}
