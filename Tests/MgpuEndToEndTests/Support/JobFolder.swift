import Foundation

/// A job folder as the agent makes it (0700; command, workdir /tmp, environ, empty stdout and stderr, each 0600) under
/// a new temporary root, for running a supervisor on directly: (root, folder). `command` is given the root (a place for
/// what the job leaves for the test to read). The caller removes `root`.
func makeJobFolder(prefix: String, command: (_ root: String) -> String) throws -> (root: String, dir: String) {
    let root = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
    let dir = root + "/AAAAAAAA"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    chmod(dir, 0o700)
    for (name, text) in [("command", command(root)), ("workdir", "/tmp"), ("environ", "PATH=/usr/bin:/bin\0"),
                         ("stdout", ""), ("stderr", "")] {
        try text.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8)
        chmod(dir + "/" + name, 0o600)
    }
    return (root, dir)
}

/// The small per-job supervisor built beside the mgpu the tests run.
var supervisorBinary: String {
    URL(fileURLWithPath: mgpuBinary).deletingLastPathComponent().appendingPathComponent("mgpu-supervise").path
}
