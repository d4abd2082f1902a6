import Foundation
import GRDB
import MgpuCore
import MgpuWire
import Synchronization

/// The default store: one SQLite file (WAL, synchronous=FULL) in the state dir, through a GRDB pool: reads run
/// beside a commit instead of waiting for it.
/// Jobs and nodes are rows keyed by id, their fields in a JSON column, with the columns the store
/// queries by (state, submission order) beside it.
public final class SQLiteStore: StateStore {
    let queue: DatabasePool
    public let path: String
    /// Every commit goes through it: concurrent ones share a transaction (GroupCommit.swift).
    let commits: GroupCommit<EncodedChange>
    /// Environments as rows, remembered (EnvironmentRows below).
    let environmentRows = EnvironmentRows()

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            let pool = try DatabasePool(path: path, configuration: config)
            queue = pool
            let rows = environmentRows
            commits = GroupCommit(label: "mgpu.store") { changes in try SQLiteStore.write(changes, to: pool, path: path, environments: rows) }
            // A state dir a newer mgpu has migrated: this one does not know its schema, so it must not touch it.
            let migrator = Self.migrator
            if try queue.read({ try migrator.hasBeenSuperseded($0) }) {
                let known = Set(migrator.migrations)
                let unknown = try queue.read { try migrator.appliedIdentifiers($0) }.subtracting(known).sorted()
                throw StoreError(message: "the state database \(path) was written by a newer mgpu (its schema has \(unknown.joined(separator: ", ")), which mgpu \(mgpuVersion) does not know): run that newer mgpu, or restore a backup of the state dir")
            }
            try migrator.migrate(queue)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(message: "cannot open the state database \(path): \(Self.describe(error))")
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE job (id TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL, data BLOB NOT NULL);
                CREATE INDEX job_state ON job(state, seq);
                CREATE TABLE node (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL);
                """)
        }
        // The end time as a column, so that the master loads only recent history (older jobs stay in the store).
        m.registerMigration("v2: ended") { db in
            try db.execute(sql: """
                ALTER TABLE job ADD COLUMN ended REAL;
                UPDATE job SET ended = json_extract(CAST(data AS TEXT), '$.endTime');
                CREATE INDEX job_ended ON job(ended);
                """)
        }
        // Fair share: each user's decayed usage, and the accounts and users admins set.
        m.registerMigration("v3: policy") { db in
            try db.execute(sql: """
                CREATE TABLE usage (user TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL);
                CREATE TABLE policy (id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1), data BLOB NOT NULL);
                """)
        }
        // History (`mgpu history`): a user's ended jobs by end time.
        m.registerMigration("v4: history") { db in
            try db.execute(sql: """
                ALTER TABLE job ADD COLUMN user TEXT;
                UPDATE job SET user = json_extract(CAST(data AS TEXT), '$.user');
                CREATE INDEX job_user_ended ON job(user, ended);
                """)
        }
        // Compact rows: a submission's environment is stored once (bulk submissions and arrays share it) and its jobs
        // name its row; jobs stored before keep theirs in their data.
        m.registerMigration("v5: environments") { db in
            try db.execute(sql: """
                CREATE TABLE environment (id INTEGER PRIMARY KEY, data BLOB NOT NULL UNIQUE);
                ALTER TABLE job ADD COLUMN env INTEGER;
                CREATE INDEX job_env ON job(env);
                """)
        }
        // Job rows leave out the fields that hold their default (Job.Defaulted): an mgpu before this one could not read
        // them, and refuses a state dir with a migration it does not know.
        m.registerMigration("v6: compact job rows") { _ in }
        return m
    }

    /// Jobs from rows of `data` and `env` (the environment row's id, or NULL where the data holds it): jobs that
    /// name one environment row share one dictionary.
    static func jobs(_ rows: [Row], db: Database, decoder: JSONDecoder) throws -> [Job] {
        var environments: [Int64: [String: String]] = [:]
        let statement = try db.cachedStatement(sql: "SELECT data FROM environment WHERE id = ?")
        return try rows.map { row in
            var job = try decoder.decode(Job.self, from: row["data"] as Data)
            if let id = row["env"] as Int64? {
                if let environment = environments[id] {
                    job.environment = environment
                } else if let data = try Data.fetchOne(statement, arguments: [id]) {
                    job.environment = try decoder.decode([String: String].self, from: data)
                    environments[id] = job.environment
                }
            }
            return job
        }
    }

    public func load(endedSince: Double) throws -> StoredState {
        let decoder = JSONDecoder()
        do {
            return try queue.read { db in
                let jobs = try Self.jobs(Row.fetchAll(db, sql: "SELECT data, env FROM job WHERE ended IS NULL OR ended >= ? ORDER BY seq",
                                                      arguments: [endedSince]), db: db, decoder: decoder)
                let nodes = try Row.fetchAll(db, sql: "SELECT data FROM node ORDER BY id").map {
                    try decoder.decode(Node.self, from: $0["data"] as Data)
                }
                let maxSeq = try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM job") ?? 0
                var usage: [String: Usage] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT user, data FROM usage") {
                    usage[row["user"]] = try decoder.decode(Usage.self, from: row["data"] as Data)
                }
                let policy = try Row.fetchOne(db, sql: "SELECT data FROM policy WHERE id = 1").map {
                    try decoder.decode(SharingPolicy.self, from: $0["data"] as Data)
                }
                return StoredState(jobs: jobs, nodes: nodes, maxSeq: maxSeq, usage: usage, policy: policy)
            }
        } catch {
            throw StoreError(message: "cannot read the state database \(path): \(Self.describe(error))")
        }
    }

    public func job(_ id: JobID) throws -> Job? {
        do {
            return try queue.read { db in
                try Self.jobs(Row.fetchAll(db, sql: "SELECT data, env FROM job WHERE id = ?", arguments: [id.rawValue]),
                              db: db, decoder: JSONDecoder()).first
            }
        } catch {
            throw StoreError(message: "cannot read the state database \(path): \(Self.describe(error))")
        }
    }

    public func commit(_ change: StoreChange) throws {
        guard !change.isEmpty else { return }
        try commits.commit(try encode(change))
    }

    /// `commit`, suspending (holding no thread) while the change waits for its turn and its fsync.
    public func groupCommit(_ change: StoreChange) async throws {
        guard !change.isEmpty else { return }
        try await commits.commitSuspending(try encode(change))
    }

    /// Transactions written so far.
    var transactions: Int { commits.transactions }

    /// A change as rows, encoded by its caller (many at once), written by the group commit (one at a time).
    struct EncodedChange: Sendable {
        var jobs: [(id: String, seq: Int64, state: String, data: Data, ended: Double?, user: String, environment: Int)] = []
        var environments: [Data] = []
        var nodes: [(id: String, data: Data)] = []
        var removedNodes: [String] = []
        var removedJobs: [JobID] = []
        var usage: [(user: String, data: Data)] = []
        var policy: Data?
    }

    func encode(_ change: StoreChange) throws -> EncodedChange {
        let encoder = JSONEncoder()
        do {
            // Each environment is encoded once per commit (a bulk submission's jobs share one dictionary: comparing
            // them is cheap), and only once for all the commits of a job's life (EnvironmentRows).
            var environments: [(dictionary: [String: String], data: Data)] = []
            var encoded = EncodedChange()
            encoded.jobs = try change.jobs.map { job in
                var stripped = job
                stripped.environment = [:]
                let index: Int
                if let found = environments.lastIndex(where: { $0.dictionary == job.environment }) {
                    index = found
                } else {
                    environments.append((job.environment, try environmentRows.encoded(job.environment)))
                    index = environments.count - 1
                }
                return (job.id.rawValue, job.seq, job.state.rawValue, try encoder.encode(stripped), job.endTime, job.user, index)
            }
            encoded.environments = environments.map(\.data)
            encoded.nodes = try change.nodes.map { ($0.id, try encoder.encode($0)) }
            encoded.removedNodes = change.removedNodes
            encoded.removedJobs = change.removedJobs
            encoded.usage = try change.usage.map { ($0.key, try encoder.encode($0.value)) }
            encoded.policy = try change.policy.map { try encoder.encode($0) }
            return encoded
        } catch {
            throw StoreError(message: "could not save to \(path): \(Self.describe(error))")
        }
    }

    /// Writes changes in one transaction, in order, or none of them.
    static func write(_ changes: [EncodedChange], to pool: DatabasePool, path: String, environments: EnvironmentRows) throws {
        do {
            // The environment rows this transaction adds are remembered only once it is committed, and only if no
            // rows went meanwhile (a pruning after it, say: writers take turns, but this line runs after its turn).
            var added: [Data: Int64] = [:]
            var generation = 0
            try pool.write { db in
                added = [:]
                generation = environments.generation
                for change in changes { try write(change, db, environments: environments, added: &added) }
            }
            environments.remember(added, ifStill: generation)
        } catch {
            throw StoreError(message: "could not save to \(path): \(Self.describe(error))")
        }
    }

    private static func write(_ change: EncodedChange, _ db: Database, environments: EnvironmentRows, added: inout [Data: Int64]) throws {
        let insertEnvironment = try db.cachedStatement(sql: "INSERT OR IGNORE INTO environment (data) VALUES (?)")
        let findEnvironment = try db.cachedStatement(sql: "SELECT id FROM environment WHERE data = ?")
        var environmentIDs: [Int64] = []
        for environment in change.environments {
            if let id = added[environment] ?? environments.id(of: environment) {
                environmentIDs.append(id)
                continue
            }
            try insertEnvironment.execute(arguments: [environment])
            let id = try Int64.fetchOne(findEnvironment, arguments: [environment])!
            added[environment] = id
            environmentIDs.append(id)
        }
        let jobStatement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO job (id, seq, state, data, ended, user, env) VALUES (?, ?, ?, ?, ?, ?, ?)")
        for row in change.jobs {
            try jobStatement.execute(arguments: [row.id, row.seq, row.state, row.data, row.ended, row.user, environmentIDs[row.environment]])
        }
        let nodeStatement = try db.cachedStatement(sql: "INSERT OR REPLACE INTO node (id, data) VALUES (?, ?)")
        for row in change.nodes { try nodeStatement.execute(arguments: [row.id, row.data]) }
        for id in change.removedNodes { try db.execute(sql: "DELETE FROM node WHERE id = ?", arguments: [id]) }
        var released = Set<Int64>()
        for id in change.removedJobs {
            if let env = try Int64.fetchOne(db, sql: "SELECT env FROM job WHERE id = ?", arguments: [id.rawValue]) { released.insert(env) }
            try db.execute(sql: "DELETE FROM job WHERE id = ?", arguments: [id.rawValue])
        }
        if !released.isEmpty {
            // Rows may go: what was remembered of them may be wrong from here on, in this transaction and after it.
            environments.forgetIDs()
            added = [:]
        }
        for env in released {
            try db.execute(sql: "DELETE FROM environment WHERE id = ? AND NOT EXISTS (SELECT 1 FROM job WHERE env = ?)", arguments: [env, env])
        }
        for (user, usage) in change.usage { try db.execute(sql: "INSERT OR REPLACE INTO usage (user, data) VALUES (?, ?)", arguments: [user, usage]) }
        if let policy = change.policy { try db.execute(sql: "INSERT OR REPLACE INTO policy (id, data) VALUES (1, ?)", arguments: [policy]) }
    }

    public func existingJobIDs(_ ids: [JobID]) throws -> Set<JobID> {
        do {
            return try queue.read { db in
                var found = Set<JobID>()
                // An id is taken by its job, or by its array's tasks ("ID_0" to "ID_9999999" sort between "ID_" and "ID`").
                let statement = try db.cachedStatement(sql: "SELECT 1 FROM job WHERE id = ? OR (id >= ? AND id < ?) LIMIT 1")
                for id in ids where try Int.fetchOne(statement, arguments: [id.rawValue, id.rawValue + "_", id.rawValue + "`"]) != nil {
                    found.insert(id)
                }
                return found
            }
        } catch {
            throw StoreError(message: "cannot read the state database \(path): \(Self.describe(error))")
        }
    }

    public func tasks(of parent: JobID) throws -> [Job] {
        do {
            return try queue.read { db in
                try Self.jobs(Row.fetchAll(db, sql: "SELECT data, env FROM job WHERE id >= ? AND id < ?",
                                           arguments: [parent.rawValue + "_", parent.rawValue + "`"]), db: db, decoder: JSONDecoder())
            }
        } catch {
            throw StoreError(message: "cannot read the state database \(path): \(Self.describe(error))")
        }
    }

    public func history(_ query: HistoryQuery) throws -> [Job] {
        var sql = "SELECT data, env FROM job WHERE ended IS NOT NULL"
        var arguments: [any DatabaseValueConvertible] = []
        if let users = query.users {
            sql += " AND user IN (\(users.map { _ in "?" }.joined(separator: ",")))"
            arguments += users
        }
        if let states = query.states {
            sql += " AND state IN (\(states.map { _ in "?" }.joined(separator: ",")))"
            arguments += states.map(\.rawValue)
        }
        if let since = query.since {
            sql += " AND ended >= ?"
            arguments.append(since)
        }
        if let until = query.until {
            sql += " AND ended < ?"
            arguments.append(until)
        }
        if let node = query.node {
            // Parts are stored as JSON: {"nodeId":"node001",...} (node ids are plain names).
            sql += " AND instr(CAST(data AS TEXT), ?) > 0"
            arguments.append("\"nodeId\":\"\(node)\"")
        }
        if let name = query.name {
            sql += " AND json_extract(CAST(data AS TEXT), '$.name') = ?"
            arguments.append(name)
        }
        sql += " ORDER BY ended DESC, seq DESC LIMIT ?"
        arguments.append(max(0, query.limit))
        do {
            return try queue.read { db in
                try Self.jobs(Row.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)), db: db, decoder: JSONDecoder())
            }.filter(query.matches)  // the node test above is textual: a pinned request names nodes too
        } catch {
            throw StoreError(message: "cannot read the state database \(path): \(Self.describe(error))")
        }
    }

    public func pruneHistory(endedBefore time: Double) throws -> Int {
        do {
            return try queue.write { db in
                try db.execute(sql: "DELETE FROM job WHERE ended IS NOT NULL AND ended < ?", arguments: [time])
                let removed = db.changesCount
                if removed > 0 {
                    environmentRows.forgetIDs()
                    try Self.deleteUnusedEnvironments(db)
                }
                return removed
            }
        } catch {
            throw StoreError(message: "could not save to \(path): \(Self.describe(error))")
        }
    }

    /// Environments no job names any more.
    static func deleteUnusedEnvironments(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM environment WHERE id NOT IN (SELECT env FROM job WHERE env IS NOT NULL)")
    }

    public func close() throws {
        // The pool's readers are read-only and cannot fold the WAL back: close them first, the writer last.
        queue.releaseMemory()
        try queue.close()
    }

    static func describe(_ error: any Error) -> String {
        if let db = error as? DatabaseError {
            switch db.resultCode {
            case .SQLITE_FULL: return "the disk is full"
            case .SQLITE_READONLY: return "the database is read-only"
            case .SQLITE_CANTOPEN: return "cannot open the file"
            case .SQLITE_IOERR: return "I/O error (\(db.message ?? "unknown")); is the disk full?"
            default: return db.message ?? "\(db.resultCode)"
            }
        }
        return "\(error)"
    }
}

/// Environments as stored rows, remembered. A job's environment does not change once it is submitted, but each commit of
/// the job (its submission, start, delivery, end) stored it again: encoded with sorted keys (a third of a job's commit
/// on the master's CPU, about as much as the job's own row) and looked up in the environment table by its bytes.
/// Safe to share: each part is behind its own lock; encoding happens on the callers' threads, ids are used by the writer.
final class EnvironmentRows: Sendable {
    private struct Encodings {
        /// The last few given, compared by storage (the master's jobs share one dictionary per environment, so this is
        /// what a job's later commits find)...
        var recent: [(dictionary: [String: String], data: Data)] = []
        /// ...and every one seen lately, by value (a new submission's environment is a dictionary of its own).
        var byValue: [[String: String]: Data] = [:]
    }
    private let encodings = Mutex(Encodings())
    /// Stored rows' ids by their bytes, as of the last committed transaction. Forgotten whenever rows may have gone,
    /// which starts a new generation.
    private let ids = Mutex<(generation: Int, ids: [Data: Int64])>((0, [:]))
    /// Bounds: forgetting only means encoding or looking up again.
    static let recentCount = 8, byValueCount = 4096, idCount = 4096

    /// `environment` as its row holds it: JSON with sorted keys, so that equal environments are equal rows.
    func encoded(_ environment: [String: String]) throws -> Data {
        if let data = encodings.withLock({ cache -> Data? in
            if let hit = cache.recent.first(where: { $0.dictionary.isSameStorage(as: environment) }) { return hit.data }
            guard let data = cache.byValue[environment] else { return nil }
            Self.remember(environment, data, in: &cache)
            return data
        }) { return data }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = try encoder.encode(environment)
        encodings.withLock { cache in
            if cache.byValue.count >= Self.byValueCount { cache.byValue.removeAll(keepingCapacity: true) }
            cache.byValue[environment] = data
            Self.remember(environment, data, in: &cache)
        }
        return data
    }

    private static func remember(_ environment: [String: String], _ data: Data, in cache: inout Encodings) {
        if cache.recent.count >= recentCount { cache.recent.removeLast() }
        cache.recent.insert((environment, data), at: 0)
    }

    /// The id of the stored row holding `data`, if it is known.
    func id(of data: Data) -> Int64? { ids.withLock { $0.ids[data] } }

    var generation: Int { ids.withLock { $0.generation } }

    /// Rows a committed transaction added (or found), if none may have gone since it began (`generation` then).
    func remember(_ added: [Data: Int64], ifStill generation: Int) {
        guard !added.isEmpty else { return }
        ids.withLock { known in
            guard known.generation == generation else { return }
            if known.ids.count + added.count > Self.idCount { known.ids.removeAll(keepingCapacity: true) }
            known.ids.merge(added) { _, new in new }
        }
    }

    /// Rows may have been deleted.
    func forgetIDs() {
        ids.withLock { known in
            known.generation += 1
            known.ids.removeAll()
        }
    }
}
