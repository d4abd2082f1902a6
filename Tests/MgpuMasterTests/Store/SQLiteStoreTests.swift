import Foundation
import GRDB
@testable import MgpuMaster
import MgpuCore
import Testing

@Suite struct SQLiteStoreTests {
    static func job(_ n: Int, ended: Double?) -> Job {
        var job = Job(id: JobID(String(format: "%08X", 0xA000_0000 + n))!, seq: Int64(n), name: "j\(n)", user: "u", command: "true",
                      workdir: "/tmp", environment: [:], request: ResourceRequest(gpusPerNode: 0), submitTime: 100)
        if let ended {
            try! job.transition(to: .running, at: 110)
            try! job.transition(to: .completed, at: ended)
        }
        return job
    }

    /// A state database a newer mgpu has migrated is refused with one line, and left as it was.
    @Test func aStateDatabaseOfANewerMgpuIsRefusedAndUntouched() throws {
        let dir = NSTemporaryDirectory() + "mgpu-store-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/mgpu.sqlite"
        do {
            let store = try SQLiteStore(path: path)
            try store.queue.write { db in try db.execute(sql: "INSERT INTO grdb_migrations VALUES ('v99: from the future')") }
        }
        func applied() throws -> [String] {
            try DatabaseQueue(path: path).read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
        }
        let before = try applied()
        #expect(throws: StoreError.self) { _ = try SQLiteStore(path: path) }
        do { _ = try SQLiteStore(path: path) } catch let error as StoreError {
            #expect(error.message.contains("written by a newer mgpu") && error.message.contains("v99: from the future"), "\(error.message)")
        }
        #expect(try applied() == before && before.contains("v99: from the future"))
    }

    /// A state database written before the `ended` column existed: the migration fills it from each job's record, and
    /// the master then loads only recent history, while every job stays in the store.
    @Test func migrationFromV1KeepsEveryJobAndLoadsOnlyRecentHistory() throws {
        let dir = NSTemporaryDirectory() + "mgpu-store-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/mgpu.sqlite"
        let old = try DatabaseQueue(path: path)
        try old.write { db in
            // The v1 schema, as GRDB's migrator recorded it.
            try db.execute(sql: """
                CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                INSERT INTO grdb_migrations VALUES ('v1');
                CREATE TABLE job (id TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL, data BLOB NOT NULL);
                CREATE INDEX job_state ON job(state, seq);
                CREATE TABLE node (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL);
                """)
            for job in [Self.job(1, ended: 200), Self.job(2, ended: 5_000), Self.job(3, ended: nil)] {
                try db.execute(sql: "INSERT INTO job (id, seq, state, data) VALUES (?, ?, ?, ?)",
                               arguments: [job.id.rawValue, job.seq, job.state.rawValue, try JSONEncoder().encode(job)])
            }
        }
        try old.close()

        let store = try SQLiteStore(path: path)
        defer { try? store.close() }
        let recent = try store.load(endedSince: 1_000)
        #expect(recent.jobs.map(\.seq) == [2, 3], "the old ended job stays out of memory")
        #expect(recent.maxSeq == 3)
        #expect(try store.job(Self.job(1, ended: 200).id)?.endTime == 200, "and is still in the store")
        #expect(try store.load(endedSince: 0).jobs.count == 3)
        #expect(try store.existingJobIDs([Self.job(1, ended: 200).id, Self.job(9, ended: nil).id]) == [Self.job(1, ended: 200).id])
        #expect(try store.history(HistoryQuery(users: ["u"])).map(\.seq) == [2, 1], "the user column is filled from each record")
    }

    /// `mgpu history`'s filters run in SQL on a real file; pruning forgets what ended before a time, nothing else.
    @Test func historyFiltersAndPruning() throws {
        let dir = NSTemporaryDirectory() + "mgpu-store-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir + "/mgpu.sqlite")
        defer { try? store.close() }
        var jobs: [Job] = []
        for n in 1...6 {
            var job = Self.job(n, ended: 1000 + Double(n) * 100)
            job.user = n % 2 == 0 ? "alice" : "bob"
            job.name = n <= 3 ? "train" : "eval, \"quoted\""
            job.parts = [JobPart(rank: 0, nodeId: n == 6 ? "node_2" : "node12", gpus: [0])]
            if n == 5 { job.state = .failed }
            jobs.append(job)
        }
        jobs.append(Self.job(7, ended: nil))  // running: never history
        try store.commit(StoreChange(jobs: jobs))
        func seqs(_ query: HistoryQuery) throws -> [Int64] { try store.history(query).map(\.seq) }
        #expect(try seqs(HistoryQuery()) == [6, 5, 4, 3, 2, 1], "ended jobs only, newest first")
        #expect(try seqs(HistoryQuery(users: ["alice"])) == [6, 4, 2])
        #expect(try seqs(HistoryQuery(users: ["alice", "bob"], limit: 2)) == [6, 5])
        #expect(try seqs(HistoryQuery(states: [.failed])) == [5])
        #expect(try seqs(HistoryQuery(since: 1300, until: 1500)) == [4, 3])
        #expect(try seqs(HistoryQuery(node: "node_2")) == [6], "node names are matched whole, '_' is no wildcard")
        #expect(try seqs(HistoryQuery(node: "node1")) == [], "nor a prefix")
        #expect(try seqs(HistoryQuery(name: "eval, \"quoted\"")) == [6, 5, 4])
        // The in-memory store answers the same.
        let memory = MemoryStore()
        try memory.commit(StoreChange(jobs: jobs))
        for query in [HistoryQuery(), HistoryQuery(users: ["alice"]), HistoryQuery(states: [.failed]), HistoryQuery(since: 1300, until: 1500),
                      HistoryQuery(node: "node_2"), HistoryQuery(name: "train", limit: 2)] {
            #expect(try memory.history(query).map(\.seq) == seqs(query))
        }
        #expect(try store.pruneHistory(endedBefore: 1350) == 3)
        #expect(try seqs(HistoryQuery()) == [6, 5, 4])
        #expect(try store.load(endedSince: 0).jobs.map(\.seq) == [4, 5, 6, 7], "the running job stays")
    }

    /// A submission's environment is one row, whichever of its jobs are stored, in one commit or many; each job loads
    /// with its own environment (equal ones share one dictionary); a job stored with its environment in its data (before
    /// v5) still loads with it; an environment goes when the last job naming it does.
    @Test func environmentsAreStoredOnceAndComeBackWithEachJob() throws {
        let dir = NSTemporaryDirectory() + "mgpu-store-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/mgpu.sqlite")
        defer { try? store.close() }
        let shared = (0..<40).reduce(into: [String: String]()) { $0["VAR_\($1)"] = String(repeating: "v", count: $1) }
        var other = shared
        other["HOME"] = "/home/bob"
        func job(_ n: Int, _ environment: [String: String], ended: Double? = nil) -> Job {
            var job = Self.job(n, ended: ended)
            job.environment = environment
            return job
        }
        try store.commit(StoreChange(jobs: (1...50).map { job($0, shared) } + [job(51, other)]))
        // The same environment again, as another dictionary (another CLI submission), in a later commit.
        try store.commit(StoreChange(jobs: [job(52, shared.merging([:]) { a, _ in a }), job(53, [:])]))
        // A job as mgpu 0.2.0 wrote it: the environment inside its data, no env row.
        let legacy = job(54, ["OLD": "1"])
        try store.queue.write { db in
            try db.execute(sql: "INSERT INTO job (id, seq, state, data, ended, user) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [legacy.id.rawValue, legacy.seq, legacy.state.rawValue, try JSONEncoder().encode(legacy), nil, "u"])
        }
        let rows = try store.queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM environment") }
        #expect(rows == 3, "shared, bob's and the empty one")
        let data = try store.queue.read { try Data.fetchOne($0, sql: "SELECT data FROM job WHERE id = ?", arguments: [job(1, [:]).id.rawValue]) }
        #expect(!String(decoding: try #require(data), as: UTF8.self).contains("VAR_3"), "the job's own row holds no environment")
        let loaded = try store.load(endedSince: 0).jobs
        #expect(loaded.count == 54)
        for n in 1...50 { #expect(loaded[n - 1].environment == shared) }
        #expect(loaded[50].environment == other && loaded[51].environment == shared && loaded[52].environment.isEmpty)
        #expect(loaded[53].environment == ["OLD": "1"], "a row from before v5")
        #expect(try store.job(job(51, [:]).id)?.environment == other)
        // Ended and pruned, bob's job takes its environment with it; the shared one stays while a job names it.
        try store.commit(StoreChange(jobs: [job(51, other, ended: 500)]))
        #expect(try store.history(HistoryQuery()).first?.environment == other)
        #expect(try store.pruneHistory(endedBefore: 1000) == 1)
        #expect(try store.queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM environment") } == 2)
        try store.commit(StoreChange(jobs: [], removedJobs: (1...50).map { job($0, [:]).id } + [job(52, [:]).id]))
        #expect(try store.queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM environment") } == 1, "only the empty one is named")
    }

    /// A job's environment is encoded and looked up once for all its commits (EnvironmentRows), and what the store
    /// remembers of environment rows never outlives them: once the last job naming one is removed or pruned, a job
    /// with that environment stored later (in the same transaction or after) names a row that exists.
    @Test func rememberedEnvironmentRowsNeverOutliveTheirRows() throws {
        let dir = NSTemporaryDirectory() + "mgpu-store-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/mgpu.sqlite"
        let store = try SQLiteStore(path: path)
        defer { try? store.close() }
        let environment = (0..<40).reduce(into: [String: String]()) { $0["VAR_\($1)"] = "value \($1)" }
        func job(_ n: Int, ended: Double? = nil) -> Job {
            var job = Self.job(n, ended: ended)
            job.environment = environment.merging([:]) { a, _ in a }  // a dictionary of its own, as each submission's
            return job
        }
        func environmentRows() throws -> Int {
            try store.queue.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM environment") } ?? -1
        }
        func reopened() throws -> [JobID: [String: String]] {
            let again = try SQLiteStore(path: path)
            defer { try? again.close() }
            return Dictionary(uniqueKeysWithValues: try again.load(endedSince: 0).jobs.map { ($0.id, $0.environment) })
        }
        // Stored, started, ended: one row, found again from memory for the later commits.
        try store.commit(StoreChange(jobs: [job(1)]))
        let data = try store.environmentRows.encoded(environment)
        let id = try #require(store.environmentRows.id(of: data))
        try store.commit(StoreChange(jobs: [job(1, ended: 500)]))
        #expect(try environmentRows() == 1)
        // Its last job removed, the row goes; the same environment in the same transaction and in a later one is
        // stored again, and each job reads it back.
        let removeAndAdd = try store.encode(StoreChange(jobs: [], removedJobs: [job(1).id]))
        let add = try store.encode(StoreChange(jobs: [job(2)]))
        try SQLiteStore.write([removeAndAdd, add], to: store.queue, path: path, environments: store.environmentRows)
        try store.commit(StoreChange(jobs: [job(3)]))
        #expect(try environmentRows() == 1)
        #expect(try reopened() == [job(2).id: environment, job(3).id: environment])
        // Pruned: the same.
        try store.commit(StoreChange(jobs: [job(2, ended: 500), job(3, ended: 500)]))
        #expect(try store.pruneHistory(endedBefore: 1000) == 2)
        #expect(try environmentRows() == 0)
        try store.commit(StoreChange(jobs: [job(4)]))
        #expect(try reopened() == [job(4).id: environment])
        // What a transaction found is not remembered if rows may have gone since it began.
        let generation = store.environmentRows.generation
        store.environmentRows.forgetIDs()
        store.environmentRows.remember([data: id], ifStill: generation)
        #expect(store.environmentRows.id(of: data) == nil)
    }
}
