import Dispatch
import Synchronization

/// Group commit: changes that arrive while another is being written wait for it, then are written together, in one
/// transaction (one WAL write, one fsync), and each caller is answered only once its own change is durable.
///
/// Concurrent submissions (32 clients) each wrote a transaction of their own, one after another; on a disk whose fsync
/// takes milliseconds that bounds submissions at a few hundred a second whatever the CPU. Here a transaction carries
/// every change that queued behind the one before.
///
/// Two ways in: `commit` blocks its thread (the state actor's: it commits before it applies, with no suspension between)
/// and, when nothing is being written, writes on that thread (no hop); `commitSuspending` suspends its task instead of
/// holding one of the few threads of Swift's shared pool while the disk syncs, and the writing happens on `queue`.
/// A batch that fails is written again one change at a time, so a change that cannot be written fails only its caller.
final class GroupCommit<Item: Sendable>: Sendable {
    private let writeBatch: @Sendable ([Item]) throws -> Void
    private let queue: DispatchQueue
    private let state = Mutex(State())

    private struct State {
        var waiting: [Entry] = []
        /// A writer (a blocked caller, or `queue`) is taking batches; a new change only queues.
        var writing = false
        var transactions = 0
    }

    private struct Entry: Sendable {
        let item: Item
        let done: @Sendable (Result<Void, any Error>) -> Void
    }

    /// `write` writes its items in one transaction, in the order given, or throws having written none.
    init(label: String, write: @escaping @Sendable ([Item]) throws -> Void) {
        writeBatch = write
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    /// Transactions written so far (a failed batch's retries count each).
    var transactions: Int { state.withLock { $0.transactions } }

    /// Changes queued behind the batch being written.
    var waiting: Int { state.withLock { $0.waiting.count } }

    /// Writes `item`, returning once it is durable (or throwing, having written nothing of it). Blocks this thread.
    func commit(_ item: Item) throws {
        let outcome = Outcome()
        let writeHere = enqueue(Entry(item: item, done: outcome.set))
        if writeHere, writeOnce() {
            queue.async { self.writeAll() }  // more queued while this batch was written: `queue` takes them on
        }
        try outcome.wait()
    }

    /// Writes `item`, returning once it is durable (or throwing, having written nothing of it). Suspends, and holds no
    /// thread, meanwhile.
    func commitSuspending(_ item: Item) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if enqueue(Entry(item: item, done: { continuation.resume(with: $0) })) {
                queue.async { self.writeAll() }
            }
        }
    }

    /// Queues an entry; true when its caller is to start writing (nothing was being written).
    private func enqueue(_ entry: Entry) -> Bool {
        state.withLock { state in
            state.waiting.append(entry)
            if state.writing { return false }
            state.writing = true
            return true
        }
    }

    private func writeAll() {
        while writeOnce() {}
    }

    /// Writes every queued change in one transaction and answers their callers; true when more have queued meanwhile
    /// (the caller is still the writer then), false when it has stopped writing.
    private func writeOnce() -> Bool {
        let batch = state.withLock { state in
            defer { state.waiting = [] }
            return state.waiting
        }
        let outcome = attempt(batch.map(\.item))
        if case .failure = outcome, batch.count > 1 {
            for entry in batch { entry.done(attempt([entry.item])) }
        } else {
            for entry in batch { entry.done(outcome) }
        }
        return state.withLock { state in
            if state.waiting.isEmpty {
                state.writing = false
                return false
            }
            return true
        }
    }

    /// One transaction, counted before its callers are answered (so a caller that has returned sees it counted).
    private func attempt(_ items: [Item]) -> Result<Void, any Error> {
        let result = Result { try writeBatch(items) }
        state.withLock { $0.transactions += 1 }
        return result
    }
}

/// What a blocked caller waits for: its batch's outcome.
private final class Outcome: Sendable {
    private let result = Mutex<Result<Void, any Error>?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    func set(_ value: Result<Void, any Error>) {
        result.withLock { $0 = value }
        semaphore.signal()
    }

    func wait() throws {
        semaphore.wait()
        try result.withLock { $0! }.get()
    }
}
