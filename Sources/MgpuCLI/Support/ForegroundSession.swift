import CMgpuSpawn
import Dispatch
import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Synchronization

/// A job in the foreground: waits for it to start, streams its output (resuming at byte offsets after any
/// reconnect), forwards stdin, cancels it on Ctrl-C, and exits with its exit code.
struct ForegroundSession {
    let client: ClientOptions
    let options: SessionOptions
    let id: String

    var master: MasterClient {
        get throws {
            MasterClient(host: client.resolvedHost, port: client.resolvedPort, connectTimeout: options.connectionTimeout,
                         token: client.resolvedToken, tls: try client.tls.make(), oneShot: true)
        }
    }

    /// The size of this terminal when stdout is one (the job then gets a pseudo-terminal).
    static var terminalSize: TerminalSize? {
        guard isatty(1) == 1 else { return nil }
        var rows: Int32 = 0, columns: Int32 = 0
        guard mgpu_terminal_size(1, &rows, &columns) == 0, rows > 0, columns > 0 else { return TerminalSize(rows: 24, columns: 80) }
        return TerminalSize(rows: Int(rows), columns: Int(columns))
    }

    /// `submitted`: the job was submitted just now (`srun`): its input so far is known to be empty.
    func run(announce: Bool, forwardStdin: Bool, tailLines: Int? = nil, interrupts given: Interrupts? = nil,
             submitted: Bool = false) async throws -> Never {
        let master = try self.master
        let interrupts = given ?? Interrupts.install(job: id, master: master)
        defer { interrupts.cancel() }
        let expired = SharedFlag()
        let id = self.id
        let limit = options.sessionTimeout
        let sessionTimer = Task {
            try await Task.sleep(for: .milliseconds(Int64(limit * 1000)))
            expired.set()
            FileHandle.standardError.write(Data("mgpu: the session reached --session-timeout (\(Int(limit)) s): cancelling job \(id)\n".utf8))
            _ = try? await master.cancel([id])
        }
        defer { sessionTimer.cancel() }

        var follower = JobFollower(master: master, id: id)
        follower.retry = RetryPolicy(limit: options.maxConsecutiveTimeouts, what: "the mgpu master at \(master.host):\(master.port)")
        follower.longPoll = min(options.maxWaitTime, 60)
        do {
            let info = try await follower.waitForStart(announce: announce)
            if forwardStdin && info.interactiveStdin { StdinForwarder.start(master: master, job: id, offset: submitted ? 0 : nil) }
            if let tailLines { try await follower.startAtTail(lines: tailLines, ranks: max(1, info.parts.count)) }
            let ended = try await follower.stream(follow: true, known: tailLines == nil ? info : nil)
            if ended.state != .completed {
                let why = expired.isSet ? "session timeout" : (ended.reason ?? ended.exit?.summary ?? ended.state.rawValue)
                FileHandle.standardError.write(Data("mgpu: job \(id) \(ended.state.rawValue): \(why)\n".utf8))
            }
            throw CLIError.exit(JobExitCode.of(ended))
        } catch let error as CLIError {
            throw error
        } catch let error as GaveUp {
            throw CLIError("\(error.message); job \(id) keeps running. Reattach with: mgpu attach \(id)", exitCode: 2)
        } catch {
            throw CLIError("\(CLIError.from(error, client: client).message) (job \(id) goes on; reattach with: mgpu attach \(id))", exitCode: 2)
        }
    }
}

extension JobInfo {
    var interactiveStdin: Bool { interactive == true && !state.isTerminal }
}

/// A flag set from one task and read from another.
final class SharedFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// Retries a call to the master while the connection fails, up to `limit` failures in a row.
struct RetryPolicy {
    let limit: Int
    let what: String
    var failures = 0

    mutating func attempt<T>(_ body: () async throws -> T) async throws -> T {
        while true {
            do {
                let value = try await body()
                if failures > 0 { FileHandle.standardError.write(Data("mgpu: reconnected to \(what)\n".utf8)) }
                failures = 0
                return value
            } catch let error as TransportError {
                failures += 1
                if failures >= limit { throw GaveUp(message: "gave up after \(failures) failed attempts to reach \(what) (\(error))") }
                if failures == 1 { FileHandle.standardError.write(Data("mgpu: lost \(what) (\(error)); retrying\n".utf8)) }
                try await Task.sleep(for: .milliseconds(Int64(min(5, 0.25 * pow(2, Double(min(failures, 5)))) * 1000)))
            }
        }
    }
}

struct GaveUp: Error {
    let message: String
}

/// Sends what is typed on stdin to the job's stdin, at byte offsets, closing it at end of input.
enum StdinForwarder {
    /// `offset`: where the job's input ends, when known; nil: asked of the master first (a job attached to).
    static func start(master: MasterClient, job: String, offset known: Int64?) {
        let thread = Thread {
            // Blocking reads happen on this thread; each chunk is sent before the next is read.
            func send(_ bytes: [UInt8], eof: Bool, offset: Int64) -> Int64? {
                let result = Mutex<Int64?>(nil)
                let done = DispatchSemaphore(value: 0)
                Task {
                    for attempt in 0..<30 {
                        if let size = try? await master.sendStdin(job: job, offset: offset, bytes: bytes, eof: eof) {
                            result.withLock { $0 = size }
                            break
                        }
                        try? await Task.sleep(for: .milliseconds(200 * (attempt + 1)))
                    }
                    done.signal()
                }
                done.wait()
                return result.withLock { $0 }
            }
            guard var offset = known ?? send([], eof: false, offset: 0) else { return }
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(0, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 {
                    _ = send([], eof: true, offset: offset)
                    return
                }
                guard let size = send(Array(buffer[0..<n]), eof: false, offset: offset) else { return }
                offset = max(size, offset + Int64(n))
            }
        }
        thread.start()
    }
}
