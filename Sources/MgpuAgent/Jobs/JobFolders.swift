import CMgpuSpawn
import MgpuCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The agent's `jobs` folder, opened once. Every access to a job's files goes through its descriptor and
/// `CMgpuSpawn/mgpu_jobfiles.c`: relative to a directory descriptor, never through a symbolic link, never blocking on a
/// FIFO, only regular files of the agent's user with one link, and every read bounded. So nothing placed in a job
/// folder (a link to /etc/shadow, a FIFO, /dev/zero) changes what the agent, often root, reads, writes or removes.
/// The folder and each job's folder are the agent's, mode 0700: a job's owner can neither enter nor change them.
struct JobFolders: Sendable {
    let path: String
    /// Opened once in `init`, never closed: the agent keeps it for its whole life.
    let fd: Int32
    /// The user that owns every file here: the agent's.
    let owner: uid_t
    /// Finished jobs' folders kept for the next jobs (`retire`, `create`).
    let spares = Spares()

    /// At most `limit` spare folders, named `.spare-N` (never a job id, so adoption passes them by).
    final class Spares: Sendable {
        static let limit = 16
        let state = Mutex<(names: [String], next: Int)>(([], 0))

        func name() -> String { state.withLock { $0.next += 1; return ".spare-\($0.next)" } }
        func push(_ name: String) -> Bool {
            state.withLock { s in
                guard s.names.count < Self.limit else { return false }
                s.names.append(name)
                return true
            }
        }
        func pop() -> String? { state.withLock { $0.names.popLast() } }
        var count: Int { state.withLock { $0.names.count } }
    }

    init(path: String) throws(POSIXError) {
        self.path = path
        self.owner = geteuid()
        var parent = ""
        for component in path.split(separator: "/") {
            parent += "/" + component
            guard mkdir(parent, 0o700) == 0 || errno == EEXIST else { throw POSIXError(path: parent, errno) }
        }
        // Whoever may rename a folder on the way could swap this one for another: each one above must be root's or
        // ours, and writable by no one else (or sticky, as /tmp is, where others cannot move our entries).
        var above = ""
        for component in path.split(separator: "/").dropLast() {
            above += "/" + component
            var info = stat()
            guard lstat(above, &info) == 0 else { throw POSIXError(path: above, errno) }
            let mode = info.st_mode
            let ownerOK = info.st_uid == 0 || info.st_uid == owner
            let writableByOthers = mode & (S_IWGRP | S_IWOTH) != 0 && mode & S_ISVTX == 0
            let isLink = mode & S_IFMT == S_IFLNK && info.st_uid != 0 && info.st_uid != owner
            guard ownerOK, !writableByOthers, !isLink else {
                throw POSIXError(path: above, EPERM, "the agent's state dir must not be under a folder that another user owns or may write: choose --state-dir elsewhere")
            }
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw POSIXError(path: path, errno) }
        // Older agents made it 0755; nothing of a job is for other users' eyes.
        _ = fchmod(fd, 0o700)
        guard mgpu_private_dir(fd, owner) != 0 else {
            close(fd)
            throw POSIXError(path: path, EPERM, "must be a directory of this user that no one else can write")
        }
        self.fd = fd
        // Spares of an earlier run of the agent: gone (their files are an ended job's).
        for name in entries() where name.hasPrefix(".spare-") { _ = mgpu_remove_tree(fd, name) }
    }

    func dir(_ id: JobID) -> String { "\(path)/\(id)" }

    /// A private folder for the job (whatever an earlier run left under that name goes first): a spare when there is
    /// one (holding only files the agent overwrites before the supervisor starts), else a new, empty one.
    func create(_ id: JobID) throws(POSIXError) {
        if let spare = spares.pop() {
            if renameat(fd, spare, fd, id.rawValue) == 0 { return }
            _ = mgpu_remove_tree(fd, spare)
        }
        if mkdirat(fd, id.rawValue, 0o700) != 0 {
            guard errno == EEXIST else { throw POSIXError(path: dir(id), errno) }
            remove(id)
            guard mkdirat(fd, id.rawValue, 0o700) == 0 else { throw POSIXError(path: dir(id), errno) }
        }
    }

    /// Makes each of `files` (name, content) a file of the job with that content, the job's folder opened once for
    /// all of them. Files kept from an earlier job (`retire`) are written over, not emptied first (`mgpu_write_file_beneath`).
    func write(_ id: JobID, _ files: [(name: String, bytes: [UInt8])]) throws(POSIXError) {
        let folder = mgpu_open_dir_beneath(fd, id.rawValue, owner)
        guard folder >= 0 else { throw POSIXError(path: dir(id), errno) }
        defer { close(folder) }
        for file in files {
            let rc = file.bytes.withUnsafeBytes { mgpu_write_file_beneath(folder, file.name, $0.baseAddress, UInt($0.count), owner) }
            guard rc == 0 else { throw POSIXError(path: "\(dir(id))/\(file.name)", errno) }
        }
    }

    /// Makes `bytes` the content of a file of the job.
    func write(_ id: JobID, _ name: String, _ bytes: some Collection<UInt8>) throws(POSIXError) {
        try write(id, [(name, Array(bytes))])
    }

    /// Appends `bytes` to a file of the job. False when it is missing or not acceptable.
    @discardableResult
    func append(_ id: JobID, _ name: String, _ bytes: [UInt8]) -> Bool {
        let file = mgpu_open_job_file(fd, id.rawValue, name, O_WRONLY | O_APPEND, owner)
        guard file >= 0 else { return false }
        defer { close(file) }
        return bytes.withUnsafeBytes { mgpu_write_all(file, $0.baseAddress, UInt(bytes.count)) } == 0
    }

    /// At most `limit` bytes of a file of the job from `offset`; nil when it is missing or not acceptable.
    func read(_ id: JobID, _ name: String, offset: Int64 = 0, limit: Int) -> [UInt8]? {
        let file = mgpu_open_job_file(fd, id.rawValue, name, O_RDONLY, owner)
        guard file >= 0 else { return nil }
        defer { close(file) }
        var size = stat()
        guard fstat(file, &size) == 0 else { return nil }
        let count = max(0, min(Int64(limit), Int64(size.st_size) - offset))
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: Int(count))
        let n = bytes.withUnsafeMutableBytes { mgpu_read_at(file, $0.baseAddress, UInt(count), offset) }
        guard n >= 0 else { return nil }
        return Array(bytes.prefix(n))
    }

    /// A record the supervisor keeps for the job (`pid`, `exit`): the folder's attribute, else its file (nil when
    /// there is none). At most 8 KiB: the supervisor's records are under 4,200 bytes (read on every poll of a job).
    func record(_ id: JobID, _ name: String) -> String? {
        var bytes = [UInt8](repeating: 0, count: 8192)
        let n = bytes.withUnsafeMutableBytes { mgpu_read_record(fd, id.rawValue, name, $0.baseAddress, UInt($0.count), owner) }
        return n < 0 ? nil : String(decoding: bytes[0..<n], as: UTF8.self)
    }

    /// The size of a file of the job; 0 when it is missing or not acceptable.
    func size(_ id: JobID, _ name: String) -> Int64 {
        max(0, mgpu_job_file_size(fd, id.rawValue, name, owner))
    }

    /// Removes the job's folder; a link in it is removed, never followed.
    func remove(_ id: JobID) {
        _ = mgpu_remove_tree(fd, id.rawValue)
    }

    /// A finished job's folder, whose supervisor is known to be gone: its agent-only files kept in a new spare folder
    /// for the next job when there is room (`mgpu_recycle_dir`), else removed.
    func retire(_ id: JobID) {
        let spare = spares.name()
        if spares.count < Spares.limit, mgpu_recycle_dir(fd, id.rawValue, spare) == 0, spares.push(spare) { return }
        _ = mgpu_remove_tree(fd, spare)
        remove(id)
    }

    /// The names in the jobs folder.
    func entries() -> [String] {
        let copy = dup(fd)
        guard copy >= 0, let dir = fdopendir(copy) else { return [] }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
