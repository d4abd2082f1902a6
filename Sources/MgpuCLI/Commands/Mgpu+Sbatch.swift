import ArgumentParser
import Foundation
import MgpuCore

extension Mgpu {
    struct Sbatch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "sbatch",
            abstract: "Submit a batch script: its #SBATCH and #MGPU lines are options; options given here win.",
            discussion: """
                mgpu sbatch train.sh                 its #SBATCH lines: --gres=gpu:2, --time ...
                mgpu sbatch --time 1:00:00 train.sh --lr 3e-4
                  options before the script are mgpu's; words after it, the script's.
                From the script's first comment block: #SBATCH --gpus/-G,
                --gres=gpu:[TYPE:]N, --gpus-per-node, --nodes/-N, --time/-t,
                --job-name/-J, --dependency/-d, --array/-a, --nodelist/-w, --output/-o,
                --error/-e, --nice, --requeue; others are named in a warning and ignored.
                #MGPU lines take any `mgpu submit` option. The script runs under its
                own #! interpreter (sh without one), in this directory, with this
                environment.
                """)

        @OptionGroup var client: ClientOptions
        @OptionGroup var job: JobRequestOptions

        @Option(help: ArgumentHelp("An array job (as mgpu submit --array).", valueName: "indices"))
        var array: String?

        @Argument(help: "The batch script.")
        var script: String

        @Argument(parsing: .captureForPassthrough, help: "The script's arguments.")
        var arguments: [String] = []

        func run() async throws {
            guard let data = FileManager.default.contents(atPath: script) else {
                throw CLIError("cannot read the script \(script)", exitCode: 2)
            }
            let text = String(decoding: data, as: UTF8.self)
            let directives = BatchScript.directives(text, name: script)
            for warning in directives.warnings { FileHandle.standardError.write(Data("mgpu sbatch: \(warning)\n".utf8)) }
            // The options this command was given, as typed: between `sbatch` and the script.
            let all = Array(CommandLine.arguments.dropFirst())
            let start = (all.firstIndex(of: "sbatch") ?? -1) + 1
            let end = all.count - arguments.count - 1  // the script's place: its arguments are all that follows it
            let given = start < end ? Array(all[start..<end]) : []
            let command = try BatchScript.command(text, arguments: arguments)
            let submit: Submit
            do {
                submit = try Submit.parse(directives.options + given + ["--", command])
            } catch {
                throw CLIError("\(script): \(Submit.message(for: error))", exitCode: 2)
            }
            try await submit.run()
        }
    }
}

/// A batch script's directives and the command that runs it on the node.
enum BatchScript {
    /// Options from the script's first comment block (`#SBATCH` translated, `#MGPU` as written), and warnings for the
    /// `#SBATCH` options mgpu does not have.
    static func directives(_ text: String, name: String) -> (options: [String], warnings: [String]) {
        var options: [String] = [], warnings: [String] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || (number == 0 && line.hasPrefix("#!")) { continue }
            guard line.hasPrefix("#") else { break }  // the first command ends the directives, as in Slurm
            if line.hasPrefix("#MGPU") {
                options += words(String(line.dropFirst(5)))
            } else if line.hasPrefix("#SBATCH") {
                let (translated, unsupported) = translate(words(String(line.dropFirst(7))))
                options += translated
                warnings += unsupported.map { "\(name):\(number + 1): #SBATCH \($0) is not supported by mgpu; ignored" }
            }
        }
        return (options, warnings)
    }

    /// Slurm's options as mgpu's; the ones it has no equivalent for.
    static func translate(_ words: [String]) -> ([String], [String]) {
        var result: [String] = [], unsupported: [String] = []
        var i = 0
        func split(_ word: String) -> (String, String?) {
            if word.hasPrefix("--"), let eq = word.firstIndex(of: "=") { return (String(word[..<eq]), String(word[word.index(after: eq)...])) }
            if word.hasPrefix("-"), !word.hasPrefix("--"), word.count > 2 { return (String(word.prefix(2)), String(word.dropFirst(2))) }
            return (word, nil)
        }
        let takesValue: Set<String> = ["--gpus", "-G", "--gres", "--gpus-per-node", "--nodes", "-N", "--time", "-t", "--job-name", "-J",
                                       "--dependency", "-d", "--array", "-a", "--nodelist", "-w", "--output", "-o", "--error", "-e",
                                       "--partition", "-p", "--account", "-A", "--mem", "--cpus-per-task", "-c", "--ntasks", "-n",
                                       "--mail-type", "--mail-user", "--qos", "-q", "--constraint", "-C", "--exclude", "-x",
                                       "--mem-per-cpu", "--mem-per-gpu", "--ntasks-per-node", "--chdir", "-D", "--begin"]
        while i < words.count {
            var (option, value) = split(words[i])
            i += 1
            if value == nil, takesValue.contains(option), i < words.count {
                value = words[i]
                i += 1
            }
            let shown = value.map { "\(option)=\($0)" } ?? option
            switch (option, value) {
            case ("--gpus", let v?), ("-G", let v?), ("--gpus-per-node", let v?):
                let flag = option == "--gpus-per-node" ? "--gpus-per-node" : "--gpus"
                let parts = v.split(separator: ":").map(String.init)
                result += [flag, parts.last ?? v] + (parts.count == 2 ? ["--gpu-type", parts[0]] : [])
            case ("--gres", let v?):
                let parts = v.split(separator: ":").map(String.init)
                guard parts.first == "gpu", parts.count >= 2, parts.count <= 3, Int(parts.last!) != nil else {
                    unsupported.append(shown)
                    continue
                }
                result += ["--gpus", parts.last!] + (parts.count == 3 ? ["--gpu-type", parts[1]] : [])
            case ("--nodes", let v?), ("-N", let v?): result += ["--nodes", v]
            case ("--time", let v?), ("-t", let v?): result += ["--time", v]
            case ("--job-name", let v?), ("-J", let v?): result += ["--name", v]
            case ("--dependency", let v?), ("-d", let v?): result += ["--dependency", v]
            case ("--array", let v?), ("-a", let v?): result += ["--array", v]
            case ("--nodelist", let v?), ("-w", let v?): result += ["--nodelist", v]
            case ("--nice", let v): result += ["--nice", v ?? "100"]
            case ("--requeue", nil): result += ["--requeue"]
            case ("--output", let v?), ("-o", let v?): result += ["--output", v]
            case ("--error", let v?), ("-e", let v?): result += ["--error", v]
            default: unsupported.append(shown)
            }
        }
        return (result, unsupported)
    }

    /// Words of a directive, as a shell splits them (spaces; '...' and "..." quote); a # starts a comment.
    static func words(_ text: String) -> [String] {
        var words: [String] = [], current = "", quote: Character?, inWord = false
        for c in text {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "'" || c == "\"" {
                quote = c
                inWord = true
            } else if c == " " || c == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else if c == "#" && !inWord {
                break
            } else {
                current.append(c)
                inWord = true
            }
        }
        if inWord { words.append(current) }
        return words
    }

    /// The job's command: the script is written to a private temporary file on the node and given to its own #!
    /// interpreter (sh without one) with `arguments` (the file is read, never executed: /tmp may be noexec); the
    /// file goes when it ends.
    static func command(_ script: String, arguments: [String]) throws -> String {
        var marker = "MGPU_SCRIPT_END"
        var random = SystemRandomNumberGenerator()
        while script.contains(marker) { marker = "MGPU_SCRIPT_END_\(UInt64.random(in: 0...UInt64.max, using: &random))" }
        let shebang = script.hasPrefix("#!") ? script.dropFirst(2).prefix { $0 != "\n" } : ""
        let interpreter = shebang.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { CommandText.shellQuote(String($0)) }
        let run = (interpreter.isEmpty ? "/bin/sh" : interpreter.joined(separator: " ")) + " \"$f\""
        let args = arguments.map(CommandText.shellQuote).joined(separator: " ")
        return """
            f=$(mktemp "${TMPDIR:-/tmp}/mgpu-sbatch.XXXXXX") || exit 1
            trap 'rm -f "$f"' EXIT
            trap 'rm -f "$f"; exit 143' TERM INT
            cat > "$f" <<'\(marker)'
            \(script.hasSuffix("\n") ? String(script.dropLast()) : script)
            \(marker)
            chmod 700 "$f"
            \(run)\(args.isEmpty ? "" : " " + args)
            """
    }
}
