import ArgumentParser
import Foundation
import MgpuCore
import MgpuWire

/// Shares and limits, as `admin account add` and `admin user set` take them.
struct PolicySettingsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Shares (default 1): fair share gives each a part of the cluster in proportion.", valueName: "n")) var shares: Double?
    @Option(help: ArgumentHelp("GPUs in use at once (-1: no limit).", valueName: "n")) var maxGpus: Int?
    @Option(help: ArgumentHelp("Running jobs at once (-1: no limit).", valueName: "n")) var maxRunning: Int?
    @Option(help: ArgumentHelp("Pending jobs (a submission past it is refused; -1: no limit).", valueName: "n")) var maxPending: Int?

    func validate() throws {
        if let error = settings.validationError() { throw ValidationError(error.message) }
    }

    var settings: PolicySettings { PolicySettings(shares: shares, maxGPUs: maxGpus, maxRunning: maxRunning, maxPending: maxPending) }

    static func limitText(_ limits: SharingPolicy.Limits) -> String {
        let parts = [limits.maxGPUs.map { "gpus \($0)" }, limits.maxRunning.map { "running \($0)" }, limits.maxPending.map { "pending \($0)" }]
        let text = parts.compactMap { $0 }.joined(separator: ", ")
        return text.isEmpty ? "-" : text
    }

    static func render(_ report: PolicyReport, admins: Set<String> = [], only: [String]?, known: [String] = []) -> String {
        var table = Table(header: ["USER", "ADMIN", "ACCOUNT", "SHARES", "LIMITS", "GPU-HOURS", "FAIR-SHARE", "RUNNING", "GPUS", "PENDING"])
        var standings = Dictionary(report.users.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in known where standings[name] == nil {
            standings[name] = PolicyReport.UserStanding(name: name, account: SharingPolicy.defaultAccount, shares: 1, limits: .init(),
                                                        usageGPUHours: 0, fairShare: 1, runningJobs: 0, gpusInUse: 0, pendingJobs: 0)
        }
        for name in standings.keys.sorted() where only?.contains(name) ?? true {
            let u = standings[name]!
            table.rows.append([u.name, admins.contains(u.name) ? "yes" : "no", u.account, String(format: "%g", u.shares),
                               limitText(u.limits), String(format: "%.1f", u.usageGPUHours), String(format: "%.3f", u.fairShare),
                               "\(u.runningJobs)", "\(u.gpusInUse)", "\(u.pendingJobs)"])
        }
        return table.render()
    }

    static func renderAccounts(_ report: PolicyReport) -> String {
        var table = Table(header: ["ACCOUNT", "SHARES", "LIMITS", "USERS"])
        let names = Set(report.policy.accounts.keys).union([SharingPolicy.defaultAccount])
        for name in names.sorted() {
            let account = report.policy.accounts[name] ?? SharingPolicy.Account()
            let users = report.users.filter { $0.account == name }.map(\.name)
            table.rows.append([name, String(format: "%g", account.shares), limitText(account.limits), users.isEmpty ? "-" : users.joined(separator: ",")])
        }
        return table.render()
    }
}

extension Mgpu {
    struct Admin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "admin", abstract: "Administer the cluster (admins only).", subcommands: [User.self, Account.self, Node.self])

        struct User: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage users: tokens, accounts, shares and limits.", subcommands: [Add.self, Set.self, List.self])

            struct Add: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "add",
                    abstract: "Add a user (or give an existing one a new token) and print the token.",
                    discussion: "The user puts it in ~/.config/mgpu/token or MGPU_TOKEN.")
                @OptionGroup var client: ClientOptions
                @Flag(help: "The user may cancel and read every job, and add users.") var admin = false
                @Argument(help: "The user's name (their Unix account name, so jobs can run as them).") var name: String

                func run() async throws {
                    let user = try await client.call { try await $0.addUser(name, admin: admin) }
                    say(user.token ?? "")
                }
            }

            struct Set: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "set",
                    abstract: "Set a user's account, shares and limits (a job over a limit waits).",
                    discussion: """
                        mgpu admin user set alice --account vision --max-gpus 8
                        mgpu admin user set bob --shares 2            (twice the share of his account's others)
                        mgpu admin user set alice --max-gpus -1       (no GPU limit any more)
                        Changes take effect at the next scheduling pass.
                        """)
                @OptionGroup var client: ClientOptions
                @Option(help: ArgumentHelp("The account the user's usage counts against (default: default).", valueName: "name")) var account: String?
                @OptionGroup var settings: PolicySettingsOptions
                @Option(help: ArgumentHelp("Where the user's jobs post a JSON event when they end (a job's own --notify wins); \"\" clears it.", valueName: "url"))
                var notify: String?
                @Argument(help: "The user's name.") var name: String

                func validate() throws {
                    guard SafeName.isValid(name) else { throw ValidationError("a user name is 1-64 letters, digits, '-', '_' or '.', got \(name.debugDescription)") }
                    if let notify, !notify.isEmpty, !JobEvent.validURL(notify) {
                        throw ValidationError("--notify takes an http:// or https:// URL with a host, or \"\" to clear it; got \(notify.debugDescription)")
                    }
                }

                func run() async throws {
                    var change = settings.settings
                    change.account = account
                    change.notify = notify
                    let report = try await client.call { try await $0.setUserPolicy(name, change) }
                    print(PolicySettingsOptions.render(report, only: [name]))
                }
            }

            struct List: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "list",
                    abstract: "List users: admin or not, account, shares, limits, decayed GPU-hours, fair-share factor, jobs.")
                @OptionGroup var client: ClientOptions
                func run() async throws {
                    let users = try await client.call { try await $0.users() }
                    let report = try await client.call { try await $0.policyReport() }
                    let admins = Swift.Set(users.filter(\.admin).map(\.name))
                    print(PolicySettingsOptions.render(report, admins: admins, only: nil, known: users.map(\.name)))
                }
            }
        }

        struct Account: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "account",
                abstract: "Manage accounts: groups of users with shares and limits of their own.", subcommands: [Add.self, List.self])

            struct Add: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "add",
                    abstract: "Add an account, or change one's shares and limits.",
                    discussion: """
                        mgpu admin account add vision --shares 2 --max-gpus 32
                        mgpu admin user set alice --account vision
                        An account's users split its share; its limits hold for all of them together.
                        """)
                @OptionGroup var client: ClientOptions
                @OptionGroup var settings: PolicySettingsOptions
                @Argument(help: "The account's name.") var name: String

                func validate() throws {
                    guard SafeName.isValid(name) else { throw ValidationError("an account name is 1-64 letters, digits, '-', '_' or '.', got \(name.debugDescription)") }
                }

                func run() async throws {
                    let report = try await client.call { try await $0.setAccount(name, settings.settings) }
                    print(PolicySettingsOptions.renderAccounts(report))
                }
            }

            struct List: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "list", abstract: "List accounts with their shares and limits.")
                @OptionGroup var client: ClientOptions
                func run() async throws {
                    print(PolicySettingsOptions.renderAccounts(try await client.call { try await $0.policyReport() }))
                }
            }
        }

        struct Node: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "node", abstract: "Manage nodes.", subcommands: [Drain.self, Resume.self, Remove.self])

            struct Drain: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "drain",
                    abstract: "Take a node out for maintenance: no new jobs go there; running ones finish.",
                    discussion: """
                        mgpu admin node drain node003 --reason "swap GPU 2"
                        mgpu nodes then shows DRAINING (jobs still run there) or DRAINED, with the reason, who and when.
                        It stays drained across master and agent restarts until `mgpu admin node resume node003`.
                        """)
                @OptionGroup var client: ClientOptions
                @Option(help: ArgumentHelp("Why (shown by mgpu nodes and the dashboard).", valueName: "text")) var reason: String?
                @Argument(help: "The node's id.") var id: String

                func validate() throws {
                    guard SafeName.isValid(id) else { throw ValidationError("a node id is 1-64 letters, digits, '.', '-' or '_', got \(id.debugDescription)") }
                }

                func run() async throws {
                    let info = try await client.call { try await $0.drainNode(id, reason: reason) }
                    say("Node \(id) \(info.drainState ?? "DRAINED"): no new jobs go there\(info.drainState == "DRAINING" ? "; the jobs running there finish" : "")")
                }
            }

            struct Resume: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "resume", abstract: "Let a drained node take jobs again.")
                @OptionGroup var client: ClientOptions
                @Argument(help: "The node's id.") var id: String

                func validate() throws {
                    guard SafeName.isValid(id) else { throw ValidationError("a node id is 1-64 letters, digits, '.', '-' or '_', got \(id.debugDescription)") }
                }

                func run() async throws {
                    _ = try await client.call { try await $0.resumeNode(id) }
                    say("Node \(id) takes jobs again")
                }
            }

            struct Remove: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "remove",
                    abstract: "Forget a node and its credential, so that its id can enrol again.",
                    discussion: """
                        A node enrols once, with the cluster secret, and then speaks with its own credential (kept in its agent's
                        state dir as node.credential); the cluster secret cannot take over its id. After a node's state dir was
                        lost (a reinstall), remove it here and start its agent again. Jobs still running there end NODE_FAIL
                        (or go back to the queue with --requeue).
                        """)
                @OptionGroup var client: ClientOptions
                @Argument(help: "The node's id.") var id: String

                func validate() throws {
                    guard SafeName.isValid(id) else { throw ValidationError("a node id is 1-64 letters, digits, '.', '-' or '_', got \(id.debugDescription)") }
                }

                func run() async throws {
                    try await client.call { try await $0.removeNode(id) }
                    say("Removed node \(id); an agent with that id may enrol again")
                }
            }
        }
    }
}
