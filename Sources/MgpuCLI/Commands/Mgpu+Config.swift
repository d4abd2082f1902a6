import ArgumentParser
import Foundation
import MgpuConfig
import MgpuWire

extension Mgpu {
    struct Config: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "config", abstract: "The config file.", subcommands: [Show.self])

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "show",
                abstract: "Print the effective configuration of mgpu master or node, and where each value comes from (flag, file, default).",
                discussion: """
                    mgpu config show master                     with /etc/mgpu/mgpu.toml, if it exists
                    mgpu config show node --config mgpu.toml -- --report-interval 2
                    Flags after -- are taken as the daemon would take them.
                    """)

            @Option(help: ArgumentHelp("The config file (default: /etc/mgpu/mgpu.toml when it exists).", valueName: "file"))
            var config: String?

            @Argument(help: ArgumentHelp("master or node.", valueName: "daemon"))
            var daemon: String = "master"

            @Argument(parsing: .captureForPassthrough, help: "The daemon's flags, after --.")
            var flags: [String] = []

            func validate() throws {
                guard ["master", "node"].contains(daemon) else { throw ValidationError("show the configuration of master or node, got \(daemon.debugDescription)") }
            }

            func run() async throws {
                let command: any ParsableCommand.Type = daemon == "master" ? Master.self : Node.self
                // What follows the daemon's name is captured as is: take --config out of it; the rest are its flags.
                var given: [String] = [], file = config, i = 0
                let words = flags.first == "--" ? Array(flags.dropFirst()) : flags
                while i < words.count {
                    if words[i] == "--config", i + 1 < words.count { file = words[i + 1]; i += 2; continue }
                    if words[i].hasPrefix("--config=") { file = String(words[i].dropFirst(9)); i += 1; continue }
                    if words[i] != "--" { given.append(words[i]) }
                    i += 1
                }
                let path = file ?? (FileManager.default.fileExists(atPath: ConfigFile.defaultPath) ? ConfigFile.defaultPath : nil)
                var fromFile: [String] = []
                if let path {
                    var args = [daemon, "--config", path]
                    args = try ConfigArguments.apply(args)
                    fromFile = Array(args.dropFirst().dropLast(2))
                }
                // Every value as the daemon would take it: the file's, then the flags (which win).
                do { _ = try command.parseAsRoot(fromFile + given) } catch {
                    throw CLIError("\(daemon): " + command.message(for: error), exitCode: 2)
                }
                let defaults = Self.defaults(of: command)
                var table = Table(header: ["KEY", "VALUE", "FROM"])
                for key in ConfigArguments.flags(of: command) {
                    let flag = "--" + key.replacingOccurrences(of: "_", with: "-")
                    if let value = Self.value(of: flag, in: given) {
                        table.rows.append([key, value, "flag"])
                    } else if let value = Self.value(of: flag, in: fromFile) {
                        table.rows.append([key, value, "file \(path ?? "")"])
                    } else {
                        table.rows.append([key, defaults[key] ?? "-", "default"])
                    }
                }
                print(table.render())
            }

            /// The value a flag has in `args` (the last one given), "true" for a flag without a value.
            static func value(of flag: String, in args: [String]) -> String? {
                var found: String?
                for (i, word) in args.enumerated() {
                    if word == flag {
                        if i + 1 < args.count, !args[i + 1].hasPrefix("--") { found = args[i + 1] } else { found = "true" }
                    } else if word.hasPrefix(flag + "=") {
                        found = String(word.dropFirst(flag.count + 1))
                    }
                }
                return found
            }

            /// Each option's default, as its help says it ("(default: 30.0)").
            static func defaults(of command: any ParsableCommand.Type) -> [String: String] {
                let help = command.helpMessage(includeHidden: false, columns: 10_000)
                var result: [String: String] = [:]
                let regex = try! Regex(#"(?m)^ {2}(?:-[A-Za-z], )?--([a-z][a-z0-9-]*)[^\n]*\(default: ([^)]*)\)"#)
                for match in help.matches(of: regex) {
                    guard let name = match.output[1].substring, let value = match.output[2].substring else { continue }
                    result[name.replacingOccurrences(of: "-", with: "_")] = String(value)
                }
                return result
            }
        }
    }
}
