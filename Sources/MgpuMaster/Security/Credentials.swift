import Foundation
import GRDB
import MgpuWire
import Synchronization

/// Who may talk to the master.
///
/// - The *cluster secret* (`<state>/cluster.secret`, mode 0600, made on first start) lets a new node enrol: its first
///   registration under a node id it has never used. Copy it to each node (`mgpu node --token-file`, or `MGPU_TOKEN`).
///   It can do nothing else: it cannot report for a node, and it cannot take over a node id that has enrolled.
/// - A *node credential* is given to a node when it enrols. It is bound to that node id: the agent keeps it in its
///   state dir (`node.credential`) and presents it from then on, and it speaks only for that node.
///   `mgpu admin node remove NODE` forgets it, so that the id can enrol again.
/// - *Users* have tokens. On first start the Unix user running the master becomes an admin, and its token is written
///   to `<state>/tokens/<name>` (0600) so that clients run by that user on that machine find it with no setup.
///   `mgpu admin user add NAME [--admin]` makes more.
///
/// Tokens are 256-bit random values kept in the state database and files, which are readable by the master's user
/// only (the state directory is made 0700). They are checked against a copy in memory, so a token check never waits
/// for the store; the copy changes only together with the database.
public final class Credentials: Sendable {
    public let clusterSecret: String
    let queue: DatabasePool
    let tokensDir: String
    /// Token -> who, for users and nodes; the database holds the same.
    let cache: Mutex<Cache>
    /// One-time sign-in codes (`mgpu dashboard`): code -> (user, expiry). In memory only: a restart forgets them.
    let signInCodes = Mutex<[String: (user: String, expires: Double)]>([:])
    /// How long a sign-in code works.
    public static let signInCodeLifetime = 60.0

    struct Cache {
        var users: [String: User] = [:]
        var nodes: [String: String] = [:]
    }

    public struct User: Sendable, Equatable {
        public let name: String
        public let admin: Bool
    }

    /// What an agent's token lets it do.
    public enum AgentIdentity: Sendable, Equatable {
        /// The cluster secret: enrol a node id that has not enrolled yet.
        case bootstrap
        /// A node credential: speak for this node, and only for it.
        case node(String)
    }

    init(stateDir: String, queue: DatabasePool, ownerName: String) throws(CredentialError) {
        self.queue = queue
        self.tokensDir = stateDir + "/tokens"
        let secretPath = stateDir + "/cluster.secret"
        if FileManager.default.fileExists(atPath: secretPath) {
            let text = (try? String(contentsOfFile: secretPath, encoding: .utf8)) ?? ""
            let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
            // An empty secret would let anyone enrol a node: refuse to start rather than accept it.
            guard secret.utf8.count >= 16, !secret.contains(where: \.isWhitespace) else {
                throw CredentialError.unusableSecret(path: secretPath)
            }
            clusterSecret = secret
        } else {
            clusterSecret = Self.randomToken()
            try Self.writePrivate(secretPath, clusterSecret + "\n")
        }
        let loaded: Cache
        do {
            loaded = try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS user (name TEXT PRIMARY KEY NOT NULL, token TEXT NOT NULL UNIQUE, admin INTEGER NOT NULL);
                    CREATE TABLE IF NOT EXISTS node_credential (node TEXT PRIMARY KEY NOT NULL, token TEXT NOT NULL UNIQUE);
                    """)
                var cache = Cache()
                for row in try Row.fetchAll(db, sql: "SELECT name, token, admin FROM user") {
                    cache.users[row["token"]] = User(name: row["name"], admin: (row["admin"] as Int) != 0)
                }
                for row in try Row.fetchAll(db, sql: "SELECT node, token FROM node_credential") {
                    cache.nodes[row["token"]] = row["node"]
                }
                return cache
            }
        } catch {
            throw CredentialError.store(SQLiteStore.describe(error))
        }
        cache = Mutex(loaded)
        if loaded.users.isEmpty { _ = try addUser(ownerName, admin: true) }
    }

    static func randomToken() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
    }

    static func writePrivate(_ path: String, _ text: String) throws(CredentialError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CredentialError.store("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, 0o600)
        _ = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }

    // MARK: Users

    /// Adds (or re-keys) a user and returns its new token; the token is also left in `<state>/tokens/<name>`.
    public func addUser(_ name: String, admin: Bool) throws(CredentialError) -> String {
        guard SafeName.isValid(name) else { throw CredentialError.badName("a user name is 1-64 letters, digits, '-', '_' or '.'") }
        let token = Self.randomToken()
        // The database first, then the copy in memory: a token check never waits for the store.
        do {
            try queue.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO user (name, token, admin) VALUES (?, ?, ?)",
                               arguments: [name, token, admin ? 1 : 0])
            }
        } catch {
            throw CredentialError.store(SQLiteStore.describe(error))
        }
        cache.withLock { cache in
            cache.users = cache.users.filter { $0.value.name != name }
            cache.users[token] = User(name: name, admin: admin)
        }
        do {
            try FileManager.default.createDirectory(atPath: tokensDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CredentialError.store("cannot make \(tokensDir): \(error.localizedDescription)")
        }
        try Self.writePrivate("\(tokensDir)/\(name)", token + "\n")
        return token
    }

    /// The user a token belongs to. An empty or malformed token matches nothing.
    public func user(token: String) -> User? {
        guard token.utf8.count == 64 else { return nil }
        return cache.withLock { $0.users[token] }
    }

    /// A code that signs `user` in once, within `signInCodeLifetime` seconds (the dashboard exchanges it for the token,
    /// so that a link carries no token). A user has at most 5 outstanding (their oldest goes first), and all users
    /// together at most 1,000 (one user's codes never push out another's: past that, a new one is refused).
    public func issueSignInCode(for user: User, now: Double = Date().timeIntervalSince1970) -> String? {
        let code = String(Self.randomToken().prefix(32))
        return signInCodes.withLock { codes -> String? in
            codes = codes.filter { $0.value.expires > now }
            let own = codes.filter { $0.value.user == user.name }
            if own.count >= 5, let oldest = own.min(by: { $0.value.expires < $1.value.expires }) { codes[oldest.key] = nil }
            guard codes.count < 1_000 else { return nil }
            codes[code] = (user.name, now + Self.signInCodeLifetime)
            return code
        }
    }

    /// The user and token a sign-in code stands for, once: the code is gone after this, whatever the answer.
    public func redeemSignInCode(_ code: String, now: Double = Date().timeIntervalSince1970) -> (user: User, token: String)? {
        guard let entry = signInCodes.withLock({ $0.removeValue(forKey: code) }), entry.expires > now else { return nil }
        return cache.withLock { cache in
            cache.users.first { $0.value.name == entry.user }.map { ($0.value, $0.key) }
        }
    }

    public func users() -> [User] {
        cache.withLock { Array($0.users.values) }.sorted { $0.name < $1.name }
    }

    // MARK: Nodes

    /// What an agent presenting `token` may do, or nil.
    public func agent(token: String) -> AgentIdentity? {
        if let node = token.utf8.count == 64 ? cache.withLock({ $0.nodes[token] }) : nil { return .node(node) }
        return isClusterSecret(token) ? .bootstrap : nil
    }

    /// Whether `node` has enrolled (holds a node credential).
    public func isEnrolled(_ node: String) -> Bool {
        cache.withLock { $0.nodes.values.contains(node) }
    }

    /// Enrols `node` and returns its new credential; refused when it has one already.
    public func enroll(_ node: String) throws(CredentialError) -> String {
        if isEnrolled(node) { throw .nodeEnrolled(node) }
        let token = Self.randomToken()
        do {
            // The primary key refuses a second enrolment of the same node, however close two attempts come.
            try queue.write { db in
                try db.execute(sql: "INSERT INTO node_credential (node, token) VALUES (?, ?)", arguments: [node, token])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw .nodeEnrolled(node)
        } catch {
            throw .store(SQLiteStore.describe(error))
        }
        cache.withLock { $0.nodes[token] = node }
        return token
    }

    /// Forgets a node's credential. True when it had one.
    @discardableResult
    public func forgetNode(_ node: String) throws(CredentialError) -> Bool {
        do {
            try queue.write { db in try db.execute(sql: "DELETE FROM node_credential WHERE node = ?", arguments: [node]) }
        } catch {
            throw .store(SQLiteStore.describe(error))
        }
        return cache.withLock { cache in
            let before = cache.nodes.count
            cache.nodes = cache.nodes.filter { $0.value != node }
            return cache.nodes.count != before
        }
    }

    /// Constant-time comparison of a presented secret with the cluster secret.
    public func isClusterSecret(_ presented: String) -> Bool {
        let a = Array(presented.utf8), b = Array(clusterSecret.utf8)
        guard !a.isEmpty, a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Why a credential could not be made, kept or used.
public enum CredentialError: Error, CustomStringConvertible, Equatable {
    /// A name that cannot be a user (400).
    case badName(String)
    /// The node has enrolled already: the cluster secret cannot speak for it (403).
    case nodeEnrolled(String)
    /// An agent's credential speaks for another node than the one it names (403).
    case wrongNode(credential: String, claimed: String)
    /// Only the cluster secret or a node credential may do that (403).
    case needsNodeCredential
    /// The cluster secret file exists but holds no usable secret (refuses to start).
    case unusableSecret(path: String)
    /// The store could not save it (503).
    case store(String)

    public var description: String {
        switch self {
        case .badName(let message): message
        case .nodeEnrolled(let node):
            "node \(node) has enrolled already: its agent must present its node credential (node.credential in the agent's state dir), not the cluster secret; to enrol it anew, an admin runs `mgpu admin node remove \(node)`"
        case let .wrongNode(credential, claimed):
            "this node credential belongs to node \(credential), not \(claimed)"
        case .needsNodeCredential:
            "the cluster secret only enrols new nodes: an agent reports with the node credential it was given at enrolment"
        case .unusableSecret(let path):
            "\(path) holds no usable cluster secret (it is empty, short or has spaces): put a random value in it (e.g. `openssl rand -hex 32`) or delete it to have one made"
        case .store(let message): message
        }
    }
}
