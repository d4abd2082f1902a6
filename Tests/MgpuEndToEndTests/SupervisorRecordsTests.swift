import CMgpuSpawn
import Foundation
import MgpuSupervisor
import Testing

/// The per-job supervisor keeps its `pid` and `exit` records as attributes of the job's folder when the agent asks
/// (`--attr-records`, as agents after 0.2.0 do), and as files otherwise: an agent of 0.2.0, still running while the
/// new binaries are installed, starts the new supervisor and reads files.
@Suite struct SupervisorRecordsTests {
    /// A job folder as the agent makes it, for `echo hi; exit 3`; the records the supervisor left: (attribute, file).
    static func supervise(extra: [String]) throws -> (pid: String?, exit: String?, pidFile: Bool, exitFile: Bool) {
        let (root, dir) = try makeJobFolder(prefix: "mgpu-supervisor") { _ in "echo hi; exit 3" }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pid = try Spawn.start([supervisorBinary, "_supervise", dir, "1"] + extra, stdout: .devNull, stderr: .devNull)
        #expect(Spawn.waitStatus(pid) == 0)
        #expect(try String(contentsOfFile: dir + "/stdout", encoding: .utf8) == "hi\n")
        func attribute(_ name: String) -> String? {
            var bytes = [UInt8](repeating: 0, count: 4096)
            let n = getxattr(dir, "user.mgpu." + name, &bytes, bytes.count)
            return n < 0 ? nil : String(decoding: bytes[0..<n], as: UTF8.self)
        }
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: dir))
        return (attribute("pid"), attribute("exit"), files.contains("pid"), files.contains("exit"))
    }

    @Test func recordsAreAttributesWhenTheAgentAsks() throws {
        let records = try Self.supervise(extra: ["--attr-records"])
        #expect(records.exit == "code 3\n", "\(records)")
        #expect(records.pid?.split(separator: " ").count == 2, "\(records)")
        #expect(!records.pidFile && !records.exitFile, "no file made for a record")
    }

    @Test func recordsAreFilesForAnAgentOf0_2_0() throws {
        let records = try Self.supervise(extra: [])
        #expect(records.pidFile && records.exitFile, "\(records)")
        #expect(records.pid == nil && records.exit == nil, "no attribute an agent of 0.2.0 would not read")
    }
}
