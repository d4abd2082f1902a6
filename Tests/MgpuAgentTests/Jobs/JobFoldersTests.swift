import Foundation
@testable import MgpuAgent
import CMgpuSpawn
import MgpuCore
import Testing

/// Finished jobs' folders are kept for the next jobs, holding only the files the agent overwrites before a job starts.
@Suite struct JobFoldersTests {
    static func inode(_ path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    @Test func aFinishedFolderServesTheNextJobWithoutItsOutputOrExit() throws {
        let root = NSTemporaryDirectory() + "mgpu-folders-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folders = try JobFolders(path: root + "/jobs")
        let a = JobID("AAAAAAAA")!, b = JobID("BBBBBBBB")!
        try folders.create(a)
        for name in ["work.json", "command", "workdir", "environ", "stdout", "stderr", "stdin", "pid", "exit"] {
            try folders.write(a, name, Array("\(name) of A".utf8))
        }
        let kept = Self.inode(folders.dir(a) + "/command")
        let held = open(folders.dir(a), O_RDONLY | O_DIRECTORY)   // a supervisor of A's that outlived its agent
        defer { close(held) }
        folders.retire(a)
        #expect(!FileManager.default.fileExists(atPath: folders.dir(a)))
        #expect(folders.entries().count == 1 && folders.entries()[0].hasPrefix(".spare-"), "\(folders.entries())")
        try folders.create(b)
        let left = try FileManager.default.contentsOfDirectory(atPath: folders.dir(b)).sorted()
        #expect(left == ["command", "environ", "work.json", "workdir"], "a later job gets no output, input, pid or exit of an earlier one: \(left)")
        try folders.write(b, "command", Array("B".utf8))
        #expect(Self.inode(folders.dir(b) + "/command") == kept, "the file is written in place: no new inode")
        #expect(folders.read(b, "command", limit: 64) == Array("B".utf8))
        #expect(JobID(folders.entries()[0]) == b)
        // What A's folder's descriptor writes never reaches B's folder: B's is a new one.
        #expect(openat(held, "exit", O_WRONLY | O_CREAT, 0o600) < 0)
        #expect(!FileManager.default.fileExists(atPath: folders.dir(b) + "/exit"))

        // A folder holding what no job folder should (a directory, a link) is removed, not kept.
        let c = JobID("CCCCCCCC")!
        try folders.create(c)
        try FileManager.default.createDirectory(atPath: folders.dir(c) + "/sub", withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: folders.dir(c) + "/command", withDestinationPath: "/etc/passwd")
        folders.retire(c)
        #expect(folders.entries() == [b.rawValue], "\(folders.entries())")

        // At most 16 spares; spares of an earlier run of the agent are removed when it starts.
        for i in 0..<20 {
            let id = JobID(String(format: "D%07X", i))!
            try folders.create(id)
            try folders.write(id, "work.json", Array("{}".utf8))
        }
        for i in 0..<20 { folders.retire(JobID(String(format: "D%07X", i))!) }
        #expect(folders.entries().filter { $0.hasPrefix(".spare-") }.count == JobFolders.Spares.limit)
        let again = try JobFolders(path: root + "/jobs")
        #expect(again.entries() == [b.rawValue])
    }

    /// The supervisor's records (`pid`, `exit`) are attributes of the job's folder, not files: a job start creates and
    /// later deletes no file for them. A record too large for an attribute, and one an older supervisor left as a
    /// file, are read all the same; a later job's folder has none of an earlier one's.
    @Test func recordsAreKeptOnTheFolderAndLeaveWithIt() throws {
        let root = NSTemporaryDirectory() + "mgpu-records-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folders = try JobFolders(path: root + "/jobs")
        let a = JobID("AAAAAAAA")!, b = JobID("BBBBBBBB")!, c = JobID("CCCCCCCC")!
        func write(_ id: JobID, _ name: String, _ text: String) -> Int32 {
            let dir = open(folders.dir(id), O_RDONLY | O_DIRECTORY)
            defer { close(dir) }
            return Array(text.utf8).withUnsafeBytes { mgpu_write_record(dir, name, $0.baseAddress, UInt($0.count)) }
        }
        try folders.create(a)
        #expect(write(a, "pid", "123 456\n") == 0)
        #expect(write(a, "exit", "0\n") == 0)
        #expect(folders.record(a, "pid") == "123 456\n" && folders.record(a, "exit") == "0\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folders.dir(a)).isEmpty, "no file made for a record")
        #expect(folders.record(a, "stdout") == nil, "no record by that name")

        // Longer than an attribute may be (an error's text): a file, renamed into place.
        let long = "error " + String(repeating: "x", count: 6000) + "\n"
        try folders.create(c)
        #expect(write(c, "exit", long) == 0)
        #expect(folders.record(c, "exit") == long)
        #expect(FileManager.default.fileExists(atPath: folders.dir(c) + "/exit"))

        // A supervisor of mgpu 0.2.0 wrote files; a file that is a link is not followed.
        try folders.create(b)
        try folders.write(b, "pid", Array("7 8\n".utf8))
        #expect(folders.record(b, "pid") == "7 8\n")
        try FileManager.default.createSymbolicLink(atPath: folders.dir(b) + "/exit", withDestinationPath: folders.dir(c) + "/exit")
        #expect(folders.record(b, "exit") == nil, "a link is not followed")

        // A's folder retired and taken by a later job: none of A's records come with it.
        folders.retire(a)
        let d = JobID("DDDDDDDD")!
        try folders.create(d)
        #expect(folders.record(d, "pid") == nil && folders.record(d, "exit") == nil)
    }
}
