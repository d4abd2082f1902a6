import ArgumentParser
import Foundation
import MgpuWire

extension Mgpu {
    struct Admin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "admin", abstract: "Administer the cluster (admins only).", subcommands: [User.self, Node.self])

        struct User: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage users and their tokens.", subcommands: [Add.self, List.self])

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

            struct List: AsyncParsableCommand {
                static let configuration = CommandConfiguration(commandName: "list", abstract: "List users.")
                @OptionGroup var client: ClientOptions
                func run() async throws {
                    let users = try await client.call { try await $0.users() }
                    var table = Table(header: ["USER", "ADMIN"])
                    for u in users { table.rows.append([u.name, u.admin ? "yes" : "no"]) }
                    print(table.render())
                }
            }
        }

        struct Node: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "node", abstract: "Manage nodes.", subcommands: [Remove.self])

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
