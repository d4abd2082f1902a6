import Foundation
import GRDB
import MgpuWire

/// Who may talk to the master.
///
/// - The *cluster secret* (`<state>/cluster.secret`, mode 0600, made on first start) is what agents present to
///   register and report. Copy it to each node (`mgpu node --token-file`, or `MGPU_TOKEN`).
/// - *Users* have tokens. On first start the Unix user running the master becomes an
///   admin, and its token is written to `<state>/tokens/<name>` (0600) so that clients run by that user on that
///   machine find it with no setup. `mgpu admin user add NAME [--admin]` makes more.
///
/// Tokens are 256-bit random values kept in the state database and files, which are readable by the master's
/// user only (the state directory is made 0700).
public final class Credentials: Sendable {
    public let clusterSecret: String
    let queue: DatabaseQueue
    let tokensDir: String

    public struct User: Sendable, Equatable {
        public let name: String
        public let admin: Bool
    }

    init(stateDir: String, queue: DatabaseQueue, ownerName: String) throws {
        self.queue = queue
        self.tokensDir = stateDir + "/tokens"
        let secretPath = stateDir + "/cluster.secret"
        if let existing = try? String(contentsOfFile: secretPath, encoding: .utf8), !existing.isEmpty {
            clusterSecret = existing.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            clusterSecret = Self.randomToken()
            try Self.writePrivate(secretPath, clusterSecret + "\n")
        }
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS user (name TEXT PRIMARY KEY NOT NULL, token TEXT NOT NULL UNIQUE, admin INTEGER NOT NULL)")
        }
        let count = try queue.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM user") ?? 0 }
        if count == 0 { _ = try addUser(ownerName, admin: true) }
    }

    static func randomToken() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    static func writePrivate(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw StoreError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, 0o600)
        _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }

    /// Adds (or re-keys) a user and returns its new token; the token is also left in `<state>/tokens/<name>`.
    public func addUser(_ name: String, admin: Bool) throws -> String {
        guard SafeName.isValid(name) else {
            throw StoreError(message: "a user name is 1-64 letters, digits, '-', '_' or '.'")
        }
        let token = Self.randomToken()
        try queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO user (name, token, admin) VALUES (?, ?, ?)",
                           arguments: [name, token, admin ? 1 : 0])
        }
        try FileManager.default.createDirectory(atPath: tokensDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try Self.writePrivate("\(tokensDir)/\(name)", token + "\n")
        return token
    }

    public func user(token: String) -> User? {
        guard token.count == 64 else { return nil }
        return try? queue.read { db in
            try Row.fetchOne(db, sql: "SELECT name, admin FROM user WHERE token = ?", arguments: [token])
                .map { User(name: $0["name"], admin: ($0["admin"] as Int) != 0) }
        }
    }

    public func users() -> [User] {
        (try? queue.read { db in
            try Row.fetchAll(db, sql: "SELECT name, admin FROM user ORDER BY name").map { User(name: $0["name"], admin: ($0["admin"] as Int) != 0) }
        }) ?? []
    }

    /// Constant-time comparison of a presented secret with the cluster secret.
    public func isClusterSecret(_ presented: String) -> Bool {
        let a = Array(presented.utf8), b = Array(clusterSecret.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
