import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

/// A link from `mgpu dashboard` (as the cluster's admin): it signs a fresh browser in once.
func signInLink(_ cluster: TestCluster, env: [String: String] = [:]) async throws -> String {
    let result = try await cluster.mgpu(["dashboard", "--no-open"], env: env)
    guard result.status == 0, let link = result.stdout.split(separator: "\n").last, link.contains("/?code=") else {
        throw TestFailure("mgpu dashboard failed (\(result.status)): \(result.stdout) \(result.stderr)")
    }
    return String(link)
}

/// Debian's python3-selenium and chromium-driver drive the real browser (installed by .ci/run).
let seleniumPython: String? = {
    guard which("chromedriver") != nil, FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"),
          (try? Spawn.capture(["/usr/bin/python3", "-c", "import selenium"]).status) == 0 else { return nil }
    return "/usr/bin/python3"
}()

extension EndToEndTests {
    @Suite struct DashboardTests {
        /// A person, not an admin, in a real browser: the sign-in form (a wrong token refused with a reason), live data,
        /// their own job first and cancelled from the page after a confirmation, another user's job refused by the
        /// master, sign out, and a one-time link that works once; no token in any address or in the browser's history.
        @Test(.enabled(if: requireTools || seleniumPython != nil, "needs chromium-driver and python3-selenium (installed by .ci/run)"))
        func aPersonSignsInAndCancelsTheirOwnJobOnly() async throws {
            let cluster = try await TestCluster.start(agents: ["node001": 2])
            defer { cluster.stop() }
            let python = try #require(seleniumPython, "chromium-driver and python3-selenium are not installed")
            // `nobody`, a real account: under a root agent the job runs as nobody.
            let userToken = try #require(try await cluster.client.addUser("nobody", admin: false).token)
            let others = try await cluster.submit(["--name", "admins-job", "sleep 120"])
            let spec = JobSpec(name: "nobodys-job", user: "nobody", command: "sleep 120", workdir: "/tmp",
                               environment: ["PATH": "/usr/bin:/bin"], request: ResourceRequest(gpusPerNode: 1))
            let own = try #require(try await MasterClient(host: "127.0.0.1", port: cluster.port, token: userToken).submit([spec]).first)
            try await cluster.waitForState(own, [.running])
            try await cluster.waitForState(others, [.running])
            let link = try await signInLink(cluster, env: ["MGPU_TOKEN": userToken])
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Support/dashboard_browser.py").path
            let (status, output) = try Spawn.capture([python, script, "http://127.0.0.1:\(cluster.port)", userToken, own.rawValue, others.rawValue,
                                                      link, testArtifacts], timeout: 120)
            #expect(status == 0, "the browser script failed: \(output)")
            let line = try #require(output.split(separator: "\n").last, "no output")
            let seen = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(output)")
            #expect(seen["formShown"] as? Bool == true)
            #expect((seen["formHelp"] as? String)?.contains("~/.config/mgpu/token") == true, "the form says where a token is")
            #expect((seen["refusedMessage"] as? String)?.contains("does not know this token") == true, "\(seen["refusedMessage"] ?? "")")
            #expect((seen["who"] as? String)?.contains("signed in as nobody") == true)
            #expect(seen["mineRows"] as? [String] == [own.rawValue], "my jobs: only nobody's")
            #expect(seen["cancelButtons"] as? [String] == [own.rawValue], "a cancel button on her own job only")
            #expect(seen["drainButtons"] as? Int == 0, "no node actions for a user who is not an admin")
            #expect((seen["confirmText"] as? String)?.contains("Cancel job \(own)") == true)
            #expect((seen["cancelNotice"] as? String)?.contains("job \(own)") == true)
            #expect(seen["ownEnded"] as? Bool == true)
            #expect(seen["othersOutcome"] as? String == "denied")
            #expect((seen["othersNotice"] as? String)?.contains("not yours") == true)
            #expect((seen["jobPageState"] as? String)?.hasPrefix("CANCELLED") == true)
            #expect(seen["tokenInStorage"] as? Bool == true)
            #expect(seen["afterSignOut"] is NSNull, "sign out forgets the token")
            #expect((seen["linkWho"] as? String)?.contains("signed in as nobody") == true)
            #expect((seen["linkAgain"] as? String)?.contains("unknown, used or expired") == true, "the link works once")
            let addresses = (seen["addresses"] as? [String] ?? []) + (seen["history"] as? [String] ?? [])
            #expect(!addresses.isEmpty && !addresses.contains { $0.contains(userToken) || $0.contains("token=") }, "\(addresses)")
            #expect(!(seen["addresses"] as? [String] ?? []).contains { $0.contains("code=") }, "the code leaves the address bar")
            // What the master holds agrees.
            #expect(try await cluster.job(own).state == .cancelled)
            #expect(try await cluster.job(others).state == .running)
        }

        /// `mgpu dashboard` prints a link with a one-time code (never the token); the master exchanges it once.
        @Test func aSignInLinkWorksOnceAndCarriesNoToken() async throws {
            let cluster = try await TestCluster.start(agents: [:])
            defer { cluster.stop() }
            let token = try #require(cluster.token)
            let link = try await signInLink(cluster)
            #expect(link.hasPrefix("http://127.0.0.1:\(cluster.port)/?code=") && !link.contains(token))
            let code = String(link.split(separator: "=").last!)
            let anonymous = HTTPClient(host: "127.0.0.1", port: cluster.port)
            let first = try await anonymous.request(.POST, "/v1/signin", body: Array(#"{"code":"\#(code)"}"#.utf8))
            #expect(first.status == 200)
            let answer = try JSONDecoder().decode(SignInResponse.self, from: Data(first.body))
            #expect(answer.token == token && answer.name == unixUser && answer.admin)
            let again = try await anonymous.request(.POST, "/v1/signin", body: Array(#"{"code":"\#(code)"}"#.utf8))
            #expect(again.status == 401 && String(decoding: again.body, as: UTF8.self).contains("mgpu dashboard"))
            #expect(try await anonymous.request(.POST, "/v1/signin/codes").status == 401, "a code needs a signed-in user")
            #expect(try await anonymous.request(.GET, "/v1/whoami").status == 401)
            #expect(try await cluster.client.whoami() == WhoAmIResponse(name: unixUser, admin: true))
            let help = try await cluster.mgpu(["dashboard", "--help"])
            #expect(help.status == 0 && help.stdout.contains("works once"))
        }
    }
}
