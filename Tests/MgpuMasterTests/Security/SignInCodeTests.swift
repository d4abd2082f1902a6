import Foundation
@testable import MgpuMaster
import Testing

/// One-time sign-in codes (`mgpu dashboard`): each stands for one user, works once, and only within its lifetime.
@Suite struct SignInCodeTests {
    static func credentials() throws -> (Credentials, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mgpu-signin-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir + "/mgpu.sqlite")
        return (try Credentials(stateDir: dir, queue: store.queue, ownerName: "root"), dir)
    }

    @Test func aCodeWorksOnceForItsUserAndNoLongerThanItsLifetime() throws {
        let (credentials, dir) = try Self.credentials()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let aliceToken = try credentials.addUser("alice", admin: false)
        let alice = try #require(credentials.user(token: aliceToken))
        let code = try #require(credentials.issueSignInCode(for: alice, now: 1000))
        #expect(code.count == 32 && code != aliceToken && !aliceToken.contains(code), "a code is not (part of) the token")
        let redeemed = try #require(credentials.redeemSignInCode(code, now: 1000 + Credentials.signInCodeLifetime - 1))
        #expect(redeemed.user == alice && redeemed.token == aliceToken)
        #expect(credentials.redeemSignInCode(code, now: 1001) == nil, "used once: gone")
        let late = try #require(credentials.issueSignInCode(for: alice, now: 2000))
        #expect(credentials.redeemSignInCode(late, now: 2000 + Credentials.signInCodeLifetime) == nil, "expired")
        #expect(credentials.redeemSignInCode(late, now: 2001) == nil, "an expired code is gone too")
        #expect(credentials.redeemSignInCode("", now: 2001) == nil)
        // A user re-keyed after the code was made signs in with the new token.
        let code2 = try #require(credentials.issueSignInCode(for: alice, now: 3000))
        let rekeyed = try credentials.addUser("alice", admin: false)
        #expect(credentials.redeemSignInCode(code2, now: 3001)?.token == rekeyed)
    }

    @Test func outstandingCodesAreBoundedPerUserAndInAll() throws {
        let (credentials, dir) = try Self.credentials()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = try #require(credentials.users().first)
        let bob = try #require(credentials.user(token: try credentials.addUser("bob", admin: false)))
        let bobs = try #require(credentials.issueSignInCode(for: bob, now: 0))
        let first = try #require(credentials.issueSignInCode(for: root, now: 0))
        for i in 1...1_000 { _ = credentials.issueSignInCode(for: root, now: Double(i) * 0.001) }
        #expect(credentials.signInCodes.withLock { codes in codes.filter { $0.value.user == root.name }.count } == 5, "a user's oldest go first")
        #expect(credentials.redeemSignInCode(first, now: 1) == nil)
        #expect(credentials.redeemSignInCode(bobs, now: 1)?.user == bob, "one user's codes never push out another's")
        // All users together: past 1,000 waiting, a new one is refused.
        for i in 0..<200 {
            let user = try #require(credentials.user(token: try credentials.addUser("u\(i)", admin: false)))
            for _ in 0..<5 { _ = credentials.issueSignInCode(for: user, now: 2) }
        }
        #expect(credentials.issueSignInCode(for: bob, now: 2) == nil)
        #expect(credentials.issueSignInCode(for: bob, now: 2 + Credentials.signInCodeLifetime) != nil, "expired ones make room")
    }
}
