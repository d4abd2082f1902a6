import ArgumentParser
import Dispatch
import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Synchronization

extension Mgpu {
    struct Srun: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "srun",
            abstract: "Run a job in the foreground: wait for its GPUs, stream its output, return its exit code.",
            discussion: """
                mgpu srun --gpus 1 -- python eval.py
                mgpu srun --nodes 2 --gpus-per-node 4 --distributed -- \\
                    sh -c 'torchrun --nnodes=$NNODES --nproc_per_node=$NPROC_PER_NODE --node_rank=$NODE_RANK \\
                           --master_addr=$MASTER_ADDR --master_port=$MASTER_PORT train.py'
                Ctrl-C cancels the job (SIGTERM to its processes, then SIGKILL); Ctrl-C again exits at once.
                Exit code: the job's (128+N if killed by signal N); 250 if cancelled, 251 if its node failed.
                """)

        @OptionGroup var client: ClientOptions
        @OptionGroup var job: JobRequestOptions
        @OptionGroup(title: "Interactive session") var session: SessionOptions

        @Argument(parsing: .captureForPassthrough, help: "The command: words after --, or one quoted string.")
        var command: [String] = []

        func validate() throws {
            try CommandText.checkLeadingOption(command, of: self)
            if CommandText.join(command).allSatisfy(\.isWhitespace) {   // (Foundation's trimming: 0.1 ms of its first use)
                throw ValidationError("give a command, e.g. mgpu srun --gpus 1 -- python train.py")
            }
        }

        func run() async throws {
            let spec = job.spec(command: CommandText.join(command), interactive: true, client: client)
            // Ctrl-C is ours from now on: one that comes while the job is being submitted cancels it once it is.
            let master = try client.client
            let interrupts = Interrupts.install(job: nil, master: master)
            let id = try await client.call { try await $0.submit([spec]) }[0].rawValue
            interrupts.attach(job: id, master: master)
            try await ForegroundSession(client: client, options: session, id: id).run(announce: true, forwardStdin: true,
                                                                                      interrupts: interrupts, submitted: true)
        }
    }

    struct Attach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "attach",
            abstract: "Reattach to a job: its live output (from the start, or the last N lines) and, if interactive, its stdin.",
            discussion: "Exits with the job's exit code when it ends; Ctrl-C cancels the job, Ctrl-C twice detaches at once.")

        @OptionGroup var client: ClientOptions
        @OptionGroup(title: "Interactive session") var session: SessionOptions

        @Option(help: ArgumentHelp("Start with the last N lines of each stream instead of the whole output.", valueName: "N"))
        var tail: Int?

        @Flag(help: "Do not forward this terminal's stdin to the job.")
        var noStdin = false

        @Argument(help: "The job id.")
        var id: String

        func validate() throws {
            try validateJobIDs([id])
            if let tail, tail < 0 { throw ValidationError("--tail must be 0 or more") }
        }

        func run() async throws {
            let job = try await client.call { try await $0.job(id) }
            try await ForegroundSession(client: client, options: session, id: job.id.rawValue)
                .run(announce: true, forwardStdin: !noStdin, tailLines: tail)
        }
    }
}

/// Ctrl-C while a foreground job runs: the first cancels the job, the second exits at once. Installed before the job is
/// submitted (`job` nil): a Ctrl-C before the master has answered cancels the job as soon as its id is known.
struct Interrupts {
    let source: any DispatchSourceSignal
    let state: State

    final class State: Sendable {
        /// The job once known, and how many Ctrl-Cs came.
        let value = Mutex<(job: String?, count: Int)>((nil, 0))
    }

    static func install(job: String?, master: MasterClient) -> Interrupts {
        signal(SIGINT, SIG_IGN)
        let state = State()
        state.value.withLock { $0.job = job }
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            let (job, count) = state.value.withLock { value -> (String?, Int) in
                value.count += 1
                return (value.job, value.count)
            }
            if count == 1 {
                guard let job else {
                    FileHandle.standardError.write(Data("mgpu: cancelling the job as soon as the master has it (Ctrl-C again to exit now)\n".utf8))
                    return
                }
                FileHandle.standardError.write(Data("mgpu: cancelling job \(job) (Ctrl-C again to exit now; the cancel goes on)\n".utf8))
                Task { _ = try? await master.cancel([job]) }
            } else {
                FileHandle.standardError.write(Data("mgpu: left job \(job ?? "") being cancelled\n".utf8))
                exit(130)
            }
        }
        source.resume()
        return Interrupts(source: source, state: state)
    }

    /// The job is known now; a Ctrl-C that came before cancels it.
    func attach(job: String, master: MasterClient) {
        let interrupted = state.value.withLock { value -> Bool in
            value.job = job
            return value.count > 0
        }
        guard interrupted else { return }
        FileHandle.standardError.write(Data("mgpu: cancelling job \(job) (Ctrl-C again to exit now; the cancel goes on)\n".utf8))
        Task { _ = try? await master.cancel([job]) }
    }

    func cancel() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
