import ArgumentParser
import Foundation
import MgpuCore
import MgpuWire

extension Mgpu {
    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "submit",
            abstract: "Queue a job. It runs through /bin/sh -c in this directory with this environment.",
            discussion: """
                mgpu submit --gpus 2 "python train.py --lr 3e-4"
                mgpu submit --gpus 1 -- python train.py --lr 3e-4
                mgpu submit --node-gpu-ids "node001:0,1;node002:0" "./run.sh"
                mgpu submit --nodes 2 --gpus-per-node 4 --distributed 'torchrun --nnodes=$NNODES ... train.py'
                mgpu submit --array 0-99%8 'python sweep.py --seed $MGPU_ARRAY_TASK_ID'
                The job sees CUDA_VISIBLE_DEVICES (its GPUs on its node), CUDA_DEVICE_ORDER=PCI_BUS_ID,
                MGPU_JOB_ID, MGPU_NODE_ID, MGPU_NODE_RANK, MGPU_NNODES and MGPU_NODELIST; a task of an array
                MGPU_ARRAY_JOB_ID, MGPU_ARRAY_TASK_ID, MGPU_ARRAY_TASK_COUNT, MGPU_ARRAY_TASK_MIN and MGPU_ARRAY_TASK_MAX.
                """)

        @OptionGroup var client: ClientOptions
        @OptionGroup var job: JobRequestOptions

        @Flag(name: [.customShort("i"), .long], help: "Stay in the foreground: stream the job's output, forward stdin, exit with its exit code.")
        var interactive = false

        @OptionGroup(title: "Interactive session") var session: SessionOptions

        @Option(help: ArgumentHelp("One job per line of FILE (or of stdin with -), all with the other options, accepted in one request and one transaction. Empty lines and lines starting with # are skipped.", valueName: "file"))
        var fromFile: String?

        @Option(help: ArgumentHelp("An array job: one task per index, as Slurm writes them: 0-99, 0-99:2 (a step), 1,3,5-7; %N runs at most N at once. Tasks are ID_N; `mgpu cancel ID` cancels them all, `mgpu cancel ID_N` one.", valueName: "indices"))
        var array: String?

        @Argument(parsing: .captureForPassthrough, help: "The command: one quoted string, or words after --.")
        var command: [String] = []

        var arrayRequest: ArrayRequest? {
            guard let array, case .success(let (tasks, max)) = TaskIndices.parse(array) else { return nil }
            return ArrayRequest(tasks: tasks, maxRunning: max)
        }

        func validate() throws {
            try CommandText.checkLeadingOption(command, of: self)
            if let array {
                if case .failure(let error) = TaskIndices.parse(array) { throw ValidationError(error.message) }
                if interactive { throw ValidationError("--array is for batch jobs: it does not go with --interactive") }
            }
            if fromFile != nil {
                if !command.isEmpty { throw ValidationError("give commands either in --from-file or on the command line, not both") }
                if interactive { throw ValidationError("--interactive runs one job; it does not go with --from-file") }
                return
            }
            if CommandText.join(command).allSatisfy(\.isWhitespace) {   // (Foundation's trimming: 0.1 ms of its first use)
                throw ValidationError("give a command, e.g. mgpu submit --gpus 1 \"python train.py\"")
            }
        }

        /// The commands of --from-file, one per line.
        func commandsFromFile(_ path: String) throws -> [String] {
            let data: Data
            if path == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else {
                guard let contents = FileManager.default.contents(atPath: path) else {
                    throw CLIError("cannot read \(path)", exitCode: 2)
                }
                data = contents
            }
            let commands = String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            if commands.isEmpty { throw CLIError("\(path == "-" ? "stdin" : path) has no command", exitCode: 2) }
            return commands
        }

        func run() async throws {
            let submitted = { (id: JobID) -> String in
                guard let array = arrayRequest else { return "Submitted job \(id)" }
                let count = array.tasks.count
                return "Submitted array job \(id) (\(count) task\(count == 1 ? "" : "s"): \(id)_[\(array.tasks.text)]\(array.maxRunning.map { ", at most \($0) at once" } ?? ""))"
            }
            if let fromFile {
                var template = job.spec(command: "", interactive: false, client: client)
                template.array = arrayRequest
                let commands = try commandsFromFile(fromFile)
                let ids = try await client.call { try await $0.submit(template: template, commands: commands) }
                say(ids.map(submitted).joined(separator: "\n"))
                return
            }
            var spec = job.spec(command: CommandText.join(command), interactive: interactive, client: client)
            spec.array = arrayRequest
            let master = try client.client
            let interrupts = interactive ? Interrupts.install(job: nil, master: master) : nil
            let ids = try await client.call { try await $0.submit([spec]) }
            guard interactive, let interrupts else {
                for id in ids { say(submitted(id)) }
                return
            }
            interrupts.attach(job: ids[0].rawValue, master: master)
            try await ForegroundSession(client: client, options: session, id: ids[0].rawValue).run(announce: true, forwardStdin: true,
                                                                                                  interrupts: interrupts, submitted: true)
        }
    }
}

extension JobRequestOptions {
    /// The job as submitted from here: this user, directory and environment (without mgpu's own token).
    func spec(command: String, interactive: Bool, client: ClientOptions) -> JobSpec {
        var spec = JobSpec(name: name, user: currentUser(), command: command, workdir: FileManager.default.currentDirectoryPath,
                environment: processEnvironment, request: request, killGraceSeconds: killGrace,
                timeLimit: timeLimit, interactive: interactive ? true : nil,
                tty: interactive ? ForegroundSession.terminalSize : nil)
        spec.requeue = requeue ? true : nil
        spec.nice = nice
        spec.preemptible = preemptible ? true : nil
        spec.notify = notify
        spec.outputFiles = outputFiles
        spec.dependencies = dependencies
        spec.removeSecrets(client.knownTokens)
        return spec
    }
}

enum CommandText {
    /// The command is captured as it comes (so that `mgpu submit python train.py --lr 3` passes `--lr` to the job), but
    /// a leading option is mgpu's: `--help`/`-h` asks for help, anything else is an option mgpu does not have. Words
    /// after `--`, or in one quoted string, are the job's.
    static func checkLeadingOption(_ command: [String], of parsed: some ParsableCommand) throws {
        guard let first = command.first, first != "--", first.hasPrefix("-"), first.count > 1 else { return }
        if first == "--help" || first == "-h" { throw CleanExit.helpRequest(parsed) }
        throw ValidationError("unknown option \(first) (see `mgpu \(type(of: parsed).configuration.commandName ?? "") --help`); put the job's command after -- or in quotes")
    }

    /// One word is a shell command as written; several words (after --) are quoted for the shell.
    static func join(_ command: [String]) -> String {
        var words = command
        if words.first == "--" { words.removeFirst() }
        if words.count == 1 { return words[0] }
        return words.map(shellQuote).joined(separator: " ")
    }

    static func shellQuote(_ word: String) -> String {
        let safe = word.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./=:,+@%".unicodeScalars.contains($0) }
        if safe && !word.isEmpty { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

func currentUser() -> String {
    if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
    return processEnvironment["USER"] ?? "uid\(getuid())"
}
