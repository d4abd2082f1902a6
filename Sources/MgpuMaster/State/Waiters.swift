/// Continuations of requests that wait (long-polls) for something to change about a key.
/// Used only inside the `MasterState` actor.
struct Waiters<Key: Hashable> {
    private var waiting: [Key: [Int: CheckedContinuation<Void, Never>]] = [:]
    private var next = 0

    mutating func add(_ key: Key, _ continuation: CheckedContinuation<Void, Never>) -> Int {
        next += 1
        waiting[key, default: [:]][next] = continuation
        return next
    }

    /// Resumes one waiter (e.g. at its timeout); a no-op when it was already woken.
    mutating func resume(_ key: Key, _ token: Int) {
        if let c = waiting[key]?.removeValue(forKey: token) { c.resume() }
        if waiting[key]?.isEmpty == true { waiting[key] = nil }
    }

    mutating func wakeAll(_ key: Key) {
        guard let all = waiting.removeValue(forKey: key) else { return }
        for c in all.values { c.resume() }
    }

    mutating func wakeEverything() {
        let all = waiting
        waiting = [:]
        for group in all.values { for c in group.values { c.resume() } }
    }
}
