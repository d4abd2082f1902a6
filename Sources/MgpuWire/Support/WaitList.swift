import Synchronization

/// Tasks waiting on a key until they are woken or their time is up, whichever comes first: the master's long-polls
/// (work for a node, a job's output or stdin, the dashboard) and the agent's wake-ups. A wake cancels the waiter's
/// timer, so no task sleeps on after an early wake. `signal` also remembers a wake nobody was waiting for, for the
/// next `wait` on that key (the agent's "a job ended" while its loop was busy).
public final class WaitList<Key: Hashable & Sendable>: Sendable {
    private let state = Mutex(State())

    private struct State {
        var next = 0
        var waiting: [Key: [Int: Entry]] = [:]
        var remembered: Set<Key> = []
        var closed = false
    }

    private struct Entry {
        let continuation: CheckedContinuation<Void, Never>
        var timer: Task<Void, Never>?
    }

    public init() {}

    /// Returns once `key` is woken or after `seconds`; at once after `close()`. It runs on the caller's actor until it
    /// suspends (`nonisolated(nonsending)`), so the waiter is registered before the actor can run anything else: an
    /// actor that checks its state and then waits cannot miss a wake that its next job sends. (Hopping off the actor
    /// first, a wake sent meanwhile found nobody waiting, and the long-poll slept its whole timeout.)
    nonisolated(nonsending) public func wait(_ key: Key, seconds: Double) async {
        guard seconds > 0 else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let token: Int? = state.withLock { state in
                if state.closed || state.remembered.remove(key) != nil { return nil }
                state.next += 1
                state.waiting[key, default: [:]][state.next] = Entry(continuation: continuation)
                return state.next
            }
            guard let token else { return continuation.resume() }
            let timer = Task.detached { [weak self] in   // on the global pool, not the caller's actor
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                guard !Task.isCancelled else { return }
                self?.expire(key, token)
            }
            // If it was woken meanwhile, the timer is not needed any more.
            let stillWaiting = state.withLock { state in
                guard state.waiting[key]?[token] != nil else { return false }
                state.waiting[key]![token]!.timer = timer
                return true
            }
            if !stillWaiting { timer.cancel() }
        }
    }

    /// Wakes every task waiting on `key`.
    public func wake(_ key: Key) {
        resume(state.withLock { $0.waiting.removeValue(forKey: key).map { Array($0.values) } ?? [] })
    }

    /// Wakes every task waiting on `key`, or, when none is, the next one to wait on it.
    public func signal(_ key: Key) {
        resume(state.withLock { state in
            guard let entries = state.waiting.removeValue(forKey: key) else {
                state.remembered.insert(key)
                return []
            }
            return Array(entries.values)
        })
    }

    /// Wakes everyone, and every later wait returns at once (shutdown).
    public func close() {
        resume(state.withLock { state in
            state.closed = true
            let all = state.waiting.values.flatMap(\.values)
            state.waiting = [:]
            return all
        })
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    private func expire(_ key: Key, _ token: Int) {
        let entry = state.withLock { state -> Entry? in
            let entry = state.waiting[key]?.removeValue(forKey: token)
            if state.waiting[key]?.isEmpty == true { state.waiting[key] = nil }
            return entry
        }
        entry?.continuation.resume()
    }

    private func resume(_ entries: [Entry]) {
        for entry in entries {
            entry.timer?.cancel()
            entry.continuation.resume()
        }
    }
}
