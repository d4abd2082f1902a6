import ArgumentParser
import Dispatch
import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Synchronization

extension Mgpu {
    struct Srun: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
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

        @Argument(parsing: .captureForPassthrough, help: "The command: words after --, or one quoted string.")
        var command: [String] = []

        func validate() throws {
            if CommandText.join(command).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                throw ValidationError("give a command, e.g. mgpu srun --gpus 1 -- python train.py")
            }
        }

        func run() async throws {
            let master = client.client
            let id: String
            do {
                id = try await master.submit([job.spec(command: CommandText.join(command))])[0].rawValue
            } catch {
                throw CLIError.from(error, client: client)
            }
            let interrupts = Interrupts.install(job: id, master: master)
            defer { interrupts.cancel() }
            do {
                var follower = JobFollower(master: master, id: id)
                _ = try await follower.waitForStart(announce: true)
                let ended = try await follower.stream(follow: true)
                if ended.state != .completed {
                    let why = ended.reason ?? ended.exit?.summary ?? ended.state.rawValue
                    FileHandle.standardError.write(Data("mgpu: job \(id) \(ended.state.rawValue): \(why)\n".utf8))
                }
                throw CLIError.exit(JobExitCode.of(ended))
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError("\(CLIError.from(error, client: client).message) (job \(id) goes on; follow it with: mgpu logs -f \(id))", exitCode: 2)
            }
        }
    }
}

/// Ctrl-C while a foreground job runs: the first cancels the job, the second exits at once.
struct Interrupts {
    let source: any DispatchSourceSignal

    final class Count: Sendable {
        let value = Mutex(0)
        func increment() -> Int { value.withLock { $0 += 1; return $0 } }
    }

    static func install(job: String, master: MasterClient) -> Interrupts {
        signal(SIGINT, SIG_IGN)
        let count = Count()
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            if count.increment() == 1 {
                FileHandle.standardError.write(Data("mgpu: cancelling job \(job) (Ctrl-C again to exit now; the cancel goes on)\n".utf8))
                Task { _ = try? await master.cancel([job]) }
            } else {
                FileHandle.standardError.write(Data("mgpu: left job \(job) being cancelled\n".utf8))
                exit(130)
            }
        }
        source.resume()
        return Interrupts(source: source)
    }

    func cancel() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
