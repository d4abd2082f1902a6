import Dispatch
import Foundation
@testable import MgpuMaster
import MgpuCore
import Synchronization
import Testing

/// Group commit (GroupCommit.swift): what queues behind a write goes to disk with the next one, each caller answered
/// once its own change is written, and a change that cannot be written fails only its own caller.
@Suite struct GroupCommitTests {
    /// A store stand-in that records each transaction, and can hold the first one until told.
    final class Disk: Sendable {
        let transactions = Mutex<[[String]]>([])
        let hold = DispatchSemaphore(value: 0)
        let holding = Mutex(false)

        func write(_ items: [String]) throws {
            if items == ["first"] {
                holding.withLock { $0 = true }
                hold.wait()
            }
            if items.contains("bad") { throw StoreError(message: "cannot write bad") }
            transactions.withLock { $0.append(items) }
        }

        var written: [[String]] { transactions.withLock { $0 } }
        var isHolding: Bool { holding.withLock { $0 } }
    }

    static func until(_ condition: () -> Bool) async {
        while !condition() { await Task.yield() }
    }

    /// Five changes that arrive while one is being written are written together, in one transaction, and each of their
    /// callers returns only once that transaction is written.
    @Test func changesThatQueueBehindAWriteShareTheNextTransaction() async throws {
        let disk = Disk()
        let group = GroupCommit<String>(label: "test.group") { try disk.write($0) }
        // The first change, from a blocked thread (as the state actor commits): written on that thread, held there.
        let first = Thread.detached { try group.commit("first") }
        await Self.until { disk.isHolding }
        let returned = Shared(0)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for i in 1...5 {
                tasks.addTask {
                    try await group.commitSuspending("change \(i)")
                    returned.value.withLock { $0 += 1 }
                }
            }
            await Self.until { group.waiting == 5 }
            #expect(returned.value.withLock { $0 } == 0, "nothing is answered before its transaction is written")
            #expect(disk.written.isEmpty)
            disk.hold.signal()
            try await tasks.waitForAll()
        }
        try await first.value
        let written = disk.written
        #expect(written.count == 2, "\(written)")
        #expect(written.first == ["first"])
        #expect(Set(written.last ?? []) == Set((1...5).map { "change \($0)" }))
        #expect(group.transactions == 2)
        #expect(group.waiting == 0)
    }

    /// A batch with a change that cannot be written is written again one change at a time: the others are written and
    /// answered, and only the bad change's caller gets the error.
    @Test func aChangeThatCannotBeWrittenFailsOnlyItsOwnCaller() async throws {
        let disk = Disk()
        let group = GroupCommit<String>(label: "test.group") { try disk.write($0) }
        let first = Thread.detached { try group.commit("first") }
        await Self.until { disk.isHolding }
        let outcomes = Shared<[String: Bool]>([:])
        await withTaskGroup(of: Void.self) { tasks in
            for item in ["a", "bad", "b"] {
                tasks.addTask {
                    let ok = (try? await group.commitSuspending(item)) != nil
                    outcomes.value.withLock { $0[item] = ok }
                }
            }
            await Self.until { group.waiting == 3 }
            disk.hold.signal()
        }
        try await first.value
        #expect(outcomes.value.withLock { $0 } == ["a": true, "bad": false, "b": true])
        #expect(Set(disk.written.flatMap { $0 }) == ["first", "a", "b"], "\(disk.written)")
        #expect(!disk.written.flatMap { $0 }.contains("bad"))
        // The held one, the failed batch of three, then each of the three alone.
        #expect(group.transactions == 5)
    }

    /// A blocked caller whose change cannot be written gets the error, and the next change is written as usual.
    @Test func aBlockedCallerGetsItsError() throws {
        let disk = Disk()
        let group = GroupCommit<String>(label: "test.group") { try disk.write($0) }
        #expect(throws: StoreError.self) { try group.commit("bad") }
        try group.commit("good")
        #expect(disk.written == [["good"]])
    }

    /// On a real SQLite file: 200 submissions from 32 tasks at once, and the state actor's commits from a thread
    /// meanwhile; every change is in the file once they have returned (read back by a new store, as after a restart),
    /// in fewer transactions than changes.
    @Test func concurrentCommitsAreAllDurable() async throws {
        let dir = NSTemporaryDirectory() + "mgpu-store-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/mgpu.sqlite"
        let store = try SQLiteStore(path: path)
        @Sendable func job(_ n: Int) -> Job {
            var job = SQLiteStoreTests.job(n, ended: nil)
            job.environment = ["N": "\(n % 3)"]  // three environments, shared among the batches' jobs
            return job
        }
        let actorCommits = Thread.detached {
            for n in 1000..<1050 { try store.commit(StoreChange(jobs: [job(n)])) }
        }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for worker in 0..<32 {
                tasks.addTask {
                    for n in stride(from: worker, to: 200, by: 32) { try await store.groupCommit(StoreChange(jobs: [job(n)])) }
                }
            }
            try await tasks.waitForAll()
        }
        try await actorCommits.value
        let transactions = store.transactions
        try store.close()
        let loaded = try SQLiteStore(path: path).load(endedSince: 0).jobs
        #expect(loaded.count == 250)
        #expect(Set(loaded.map(\.id)) == Set((Array(0..<200) + Array(1000..<1050)).map { job($0).id }))
        #expect(loaded.allSatisfy { $0.environment == ["N": "\(Int($0.seq) % 3)"] })
        #expect(transactions < 250, "\(transactions) transactions for 250 changes")
    }
}

/// A value shared by tasks and threads (a Mutex cannot be captured by an escaping closure).
final class Shared<Value: Sendable>: Sendable {
    let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
}

extension Thread {
    /// Runs `body` on a thread of its own (not Swift's pool), as the state actor's own thread blocks in a commit.
    static func detached(_ body: @escaping @Sendable () throws -> Void) -> Task<Void, any Error> {
        Task {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
            }
        }
    }
}
