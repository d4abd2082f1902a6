import ArgumentParser
import Foundation
import MgpuConfig

/// `--config FILE` (on `master`, `node`, `up`; else /etc/mgpu/mgpu.toml when it exists): the file's keys become the
/// command's options, placed before the command line's own, so that a flag wins over the file and the file over the
/// defaults. A key is its flag in snake_case (`--node-timeout` is `node_timeout`); `true` gives a flag, `false` leaves
/// it out; an array repeats the option. [master] (and [policy]'s times) are `mgpu master`'s, [node] `mgpu node`'s,
/// both for `mgpu up`; [client] (of $MGPU_CONFIG or the default file) every other command's --host/--port/--ca-cert/--tls.
struct ConfigOption: ParsableArguments {
    @Option(help: ArgumentHelp("A TOML config file ([master], [node], [policy]); flags given here win over it. Default: /etc/mgpu/mgpu.toml when it exists.", valueName: "file"))
    var config: String?

    /// The file the daemon reads: --config, else the default one when it exists.
    var path: String? { config ?? (FileManager.default.fileExists(atPath: ConfigFile.defaultPath) ? ConfigFile.defaultPath : nil) }
}

enum ConfigArguments {
    /// `arguments` (without the program's name) with the config file's options put in, or as they are.
    static func apply(_ arguments: [String], defaultPath: String = ConfigFile.defaultPath) throws -> [String] {
        guard let command = arguments.first else { return arguments }
        guard ["master", "node", "up"].contains(command) else { return try applyClient(arguments, defaultPath: defaultPath) }
        if arguments.contains("--help") || arguments.contains("-h") { return arguments }
        var path: String?
        for (i, word) in arguments.enumerated() {
            if word == "--config", i + 1 < arguments.count { path = arguments[i + 1] }
            if word.hasPrefix("--config=") { path = String(word.dropFirst("--config=".count)) }
        }
        if path == nil, FileManager.default.fileExists(atPath: defaultPath) { path = defaultPath }
        guard let path else { return arguments }
        let file: ConfigFile
        do { file = try ConfigFile(path: path) } catch { throw CLIError(error.message, exitCode: 2) }
        var added: [String] = []
        do {
            if command == "master" || command == "up" {
                added += try options(file.section("master"), known: flags(of: Mgpu.Master.self))
                let policy = file.section("policy")
                try policy.check(known: ConfigFile.policyKeys, tables: ["accounts", "users"])
                let accounts = try policy.tables("accounts"), users = try policy.tables("users")
                if !accounts.isEmpty || !users.isEmpty {
                    FileHandle.standardError.write(Data("mgpu: \(path): [policy.accounts.*] and [policy.users.*] are read by `mgpu sim --config`; on a master, set them with `mgpu admin account add` and `mgpu admin user set`\n".utf8))
                }
                added += try options(ConfigSection(subset: policy, keys: ConfigFile.policyKeys), known: flags(of: Mgpu.Master.self))
            }
            if command == "node" || command == "up" {
                added += try options(file.section("node"), known: flags(of: Mgpu.Node.self))
            }
        } catch let error as ConfigError {
            throw CLIError(error.message, exitCode: 2)
        }
        return [command] + added + arguments.dropFirst()
    }

    /// Client keys and the environment variables that win over them (as they win over the defaults).
    static let clientKeys = ["host": "MGPU_MASTER_HOST", "port": "MGPU_MASTER_PORT", "ca_cert": "MGPU_CA_CERT", "tls": "MGPU_TLS"]

    /// Every other command: [client] of $MGPU_CONFIG, else of /etc/mgpu/mgpu.toml when it exists, gives the options
    /// of `ClientOptions` the command takes (where to find the master), unless the command line or the environment
    /// gives them. They go right after the (sub)command's name.
    static func applyClient(_ arguments: [String], defaultPath: String) throws -> [String] {
        if arguments.contains("--help") || arguments.contains("-h") { return arguments }
        let env = processEnvironment
        let path = env["MGPU_CONFIG"].flatMap { $0.isEmpty ? nil : $0 } ?? (FileManager.default.fileExists(atPath: defaultPath) ? defaultPath : nil)
        guard let path else { return arguments }
        // The (sub)command the words name: mgpu admin user add ...
        var command: any ParsableCommand.Type = Mgpu.self
        var depth = 0
        while depth < arguments.count,
              let next = command.configuration.subcommands.first(where: { $0._commandName == arguments[depth] }) {
            command = next
            depth += 1
        }
        guard depth > 0 else { return arguments }
        let file: ConfigFile
        do { file = try ConfigFile(path: path) } catch { throw CLIError(error.message, exitCode: 2) }
        let section = file.section("client")
        var kept: [String] = []
        do {
            try section.check(known: clientKeys.keys.sorted())
            // A file without [client] (a node's, a master's) costs a client command no look at its options.
            guard !section.values.isEmpty else { return arguments }
            let declared = Set(flags(of: command))
            for key in section.values.keys where declared.contains(key) {
                let flag = "--" + key.replacingOccurrences(of: "_", with: "-")
                let given = arguments.prefix { $0 != "--" }.contains { $0 == flag || $0.hasPrefix(flag + "=") }
                if !given, (env[clientKeys[key]!] ?? "").isEmpty { kept.append(key) }
            }
            let added = try options(ConfigSection(subset: section, keys: kept), known: clientKeys.keys.sorted())
            return Array(arguments[..<depth]) + added + arguments[depth...]
        } catch let error as ConfigError {
            throw CLIError(error.message, exitCode: 2)
        }
    }

    /// The long options a command takes, in snake_case ("node_timeout").
    static func flags(of command: any ParsableCommand.Type) -> [String] {
        let help = command.helpMessage(includeHidden: false, columns: 1000)
        var names = Set<String>()
        // Only where an option is declared: at the start of a help line ("  -t, --time <limit>  ..."), not where a
        // help text names another option.
        let regex = try! Regex(#"(?m)^ {2}(?:-[A-Za-z], )?--([a-z][a-z0-9-]*)"#)
        for match in help.matches(of: regex) {
            if let name = match.output[1].substring { names.insert(name.replacingOccurrences(of: "-", with: "_")) }
        }
        names.subtract(["help", "config", "version"])
        return names.sorted()
    }

    /// A section's keys as options.
    static func options(_ section: ConfigSection, known: [String]) throws -> [String] {
        try section.check(known: known)
        var result: [String] = []
        for key in section.values.keys.sorted() {
            let flag = "--" + key.replacingOccurrences(of: "_", with: "-")
            func word(_ value: ConfigValue) throws -> [String] {
                switch value {
                case .string(let s): return [flag, s]
                case .int(let n): return [flag, String(n)]
                case .double(let d): return [flag, String(d)]
                case .bool(let b): return b ? [flag] : []
                case .array(let items): return try items.flatMap(word)
                case .table, .other: throw section.fail(key, "\(key) in [\(section.path.joined(separator: "."))] must be a string, a number, true or false")
                }
            }
            result += try word(section.values[key]!)
        }
        return result
    }
}
