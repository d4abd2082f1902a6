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
    }
}
