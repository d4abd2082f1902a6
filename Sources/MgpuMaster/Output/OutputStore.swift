import Foundation
import MgpuCore
import MgpuWire

/// Job output as the master keeps it: `<state>/output/<JOBID>/<rank>.stdout|stderr`, appended at byte offsets
/// the agent states, so a chunk sent twice is written once. An interactive job's stdin is kept the same way
/// (`0.stdin`, and `stdin.eof` once the client closed it).
struct OutputStore {
    let root: String
    var sizes: [String: Int64] = [:]

    init(root: String) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    static let stdinFile = "stdin"

    func path(_ job: JobID, _ rank: Int, _ stream: String) -> String {
        "\(root)/\(job)/\(rank).\(stream)"
    }

    func stdinClosed(_ job: JobID) -> Bool {
        FileManager.default.fileExists(atPath: "\(root)/\(job)/stdin.eof")
    }

    func closeStdin(_ job: JobID) throws {
        try FileManager.default.createDirectory(atPath: "\(root)/\(job)", withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: "\(root)/\(job)/stdin.eof", contents: nil) else {
            throw StoreError(message: "cannot record the end of job \(job)'s stdin")
        }
    }

    /// Where the last `lines` lines of a stream start (reading back at most 4 MB).
    func tailOffset(_ job: JobID, _ rank: Int, _ stream: String, lines: Int) -> Int64 {
        guard let handle = FileHandle(forReadingAtPath: path(job, rank, stream)) else { return 0 }
        defer { try? handle.close() }
        let size = Int64((try? handle.seekToEnd()) ?? 0)
        let start = max(0, size - (4 << 20))
        try? handle.seek(toOffset: UInt64(start))
        let bytes = Array((try? handle.readToEnd()) ?? Data())
        var count = 0
        var i = bytes.count - 1
        if i >= 0 && bytes[i] == 10 { i -= 1 }  // a final newline ends the last line
        while i >= 0 {
            if bytes[i] == 10 { count += 1; if count == lines { return start + Int64(i + 1) } }
            i -= 1
        }
        return start
    }

    mutating func size(_ job: JobID, _ rank: Int, _ stream: String) -> Int64 {
        let p = path(job, rank, stream)
        if let s = sizes[p] { return s }
        let s = ((try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? NSNumber)?.int64Value ?? 0
        sizes[p] = s
        return s
    }

    /// Appends the part of `bytes` (which starts at `offset`) that is new. Returns the size after.
    mutating func append(_ job: JobID, _ rank: Int, _ stream: String, offset: Int64, bytes: [UInt8]) throws -> Int64 {
        let current = size(job, rank, stream)
        guard offset <= current, offset + Int64(bytes.count) > current else { return current }
        let p = path(job, rank, stream)
        let dir = "\(root)/\(job)"
        if !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        let fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw StoreError(message: "cannot write \(p): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let skip = Int(current - offset)
        var written = 0
        let count = bytes.count - skip
        try bytes.withUnsafeBytes { raw in
            while written < count {
                let n = write(fd, raw.baseAddress! + skip + written, count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    // Keep the file as long as what was fully written, so offsets stay exact.
                    ftruncate(fd, off_t(current) + off_t(written))
                    throw StoreError(message: "cannot write job output \(p): \(String(cString: strerror(errno)))")
                }
                written += n
            }
        }
        let newSize = current + Int64(count)
        sizes[p] = newSize
        return newSize
    }

    func read(_ job: JobID, _ rank: Int, _ stream: String, offset: Int64, max: Int) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path(job, rank, stream)) else { return [] }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: UInt64(offset))
            return Array(try handle.read(upToCount: max) ?? Data())
        } catch {
            return []
        }
    }
}
