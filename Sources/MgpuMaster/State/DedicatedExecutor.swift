import Dispatch

/// A serial executor with a thread of its own (a serial DispatchQueue). The state actor runs on it, so its blocking
/// SQLite commits (with fsync) hold this thread, not one of the few threads of Swift's shared pool that every request,
/// decode and encode needs. Commits stay where they were, between computing a change and applying it, which is what
/// keeps "a failed commit changes nothing".
final class DedicatedExecutor: SerialExecutor {
    let queue: DispatchQueue

    init(label: String) { queue = DispatchQueue(label: label, qos: .userInitiated) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
