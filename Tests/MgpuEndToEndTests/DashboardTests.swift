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
        /// Then an admin: cancel buttons on everyone's jobs, and a node drained and resumed from its card.
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
                                                      link, testArtifacts, try #require(cluster.token), "node001",
                                                      try await signInLink(cluster, env: ["MGPU_TOKEN": userToken])], timeout: 120)
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
            // An admin may act on every job, and drains and resumes a node from its card.
            #expect(seen["adminCancelButtons"] as? [String] == [others.rawValue], "the admin's cancel buttons: every active job")
            #expect((seen["drainNotice"] as? String)?.contains("draining (swap GPU 1)") == true, "\(seen["drainNotice"] ?? "")")
            #expect((seen["drainBadge"] as? String)?.contains("swap GPU 1") == true)
            #expect(seen["resumed"] as? Bool == true)
            #expect(try await cluster.client.queue().nodes.first?.drain == nil, "resumed")
            #expect((seen["switchQuestion"] as? String)?.contains("signs you in as nobody") == true, "\(seen["switchQuestion"] ?? "")")
            #expect((seen["afterDecline"] as? String)?.contains("signed in as \(unixUser)") == true, "\(seen["afterDecline"] ?? "")")
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
            // The master says where its dashboard is.
            let logs = try FileManager.default.contentsOfDirectory(atPath: cluster.dir).filter { $0.hasPrefix("master.") && $0.hasSuffix(".out") }
            #expect(logs.contains { cluster.read($0)?.contains("dashboard: http://127.0.0.1:\(cluster.port)/") == true }, "\(logs)")
            // With a display, the link goes to xdg-open (a stand-in here, which notes what it was given).
            let bin = cluster.dir + "/bin"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
            try "#!/bin/sh\necho \"$@\" > \(cluster.dir)/opened\n".write(toFile: bin + "/xdg-open", atomically: true, encoding: .utf8)
            chmod(bin + "/xdg-open", 0o755)
            let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
            let runtime = cluster.dir + "/run"
            try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let opened = try await cluster.mgpu(["dashboard"], env: ["DISPLAY": ":0", "PATH": path, "XDG_RUNTIME_DIR": runtime])
            let shown = try #require(opened.stdout.split(separator: "\n").last.map(String.init))
            try await waitUntil("xdg-open started", timeout: 10) { cluster.read("opened") != nil }
            // Not the link on a command line (every user may read those): a page of this user's that leads to it.
            let page = try #require(cluster.read("opened")?.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(page.hasPrefix(runtime + "/") && !page.contains("code="), "\(page)")
            #expect(try String(contentsOfFile: page, encoding: .utf8).contains(shown.replacingOccurrences(of: "&", with: "&amp;")))
            #expect((try FileManager.default.attributesOfItem(atPath: page)[.posixPermissions] as? Int) == 0o600)
            try FileManager.default.removeItem(atPath: cluster.dir + "/opened")
            _ = try await cluster.mgpu(["dashboard", "--no-open"], env: ["DISPLAY": ":0", "PATH": path])
            _ = try await cluster.mgpu(["dashboard"], env: ["DISPLAY": "", "WAYLAND_DISPLAY": "", "PATH": path])
            try await Task.sleep(for: .milliseconds(300))  // xdg-open, had it been started, writes within this
            #expect(cluster.read("opened") == nil, "--no-open, or no display: nothing is opened")
        }
    }
}

extension EndToEndTests.DashboardTests {
    /// A real Prometheus scrapes the master with the README's scrape config (a token in `credentials_file`), and every
    /// query of docs/grafana/mgpu.json answers with data.
    @Test(.enabled(if: requireTools || which("prometheus") != nil, "needs Debian's prometheus (installed by .ci/run)"))
    func prometheusScrapesWithTheReadmeConfigAndEveryGrafanaQueryAnswers() async throws {
        let cluster = try await TestCluster.start(agents: ["node001": 2])
        defer { cluster.stop() }
        let prometheus = try #require(which("prometheus"), "prometheus is not installed")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        // A job that has ended (GPU-hours per user) and one that runs (who holds which GPU).
        let short = try await cluster.submit(["--name", "short", "true"])
        try await cluster.waitForState(short, [.completed])
        let running = try await cluster.submit(["--name", "held", "sleep 60"])
        try await cluster.waitForState(running, [.running])
        try await waitUntil("GPU readings", timeout: 15) { try await cluster.client.queue().nodes.first?.telemetry?.gpus.isEmpty == false }
        // The scrape config exactly as the README gives it, pointed at this master with a token made for Prometheus.
        let token = try await cluster.mgpu(["admin", "user", "add", "prometheus"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.count == 64)
        let tokenFile = cluster.dir + "/mgpu.token"
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile, 0o600)
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let block = try #require(readme.components(separatedBy: "```yaml\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
            .first { $0.contains("credentials_file") }, "the README's scrape config")
        let config = "global: { scrape_interval: 1s, evaluation_interval: 1s }\n" + block
            .replacingOccurrences(of: "/etc/prometheus/mgpu.token", with: tokenFile)
            .replacingOccurrences(of: "head-node:8080", with: "127.0.0.1:\(cluster.port)")
        try config.write(toFile: cluster.dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let port = try freePort()
        let pid = try Spawn.start([prometheus, "--config.file=\(cluster.dir)/prometheus.yml", "--storage.tsdb.path=\(cluster.dir)/tsdb",
                                   "--web.listen-address=127.0.0.1:\(port)"],
                                  stdout: .path(cluster.dir + "/prometheus.log", flags: O_WRONLY | O_CREAT | O_TRUNC),
                                  stderr: .path(cluster.dir + "/prometheus.log", flags: O_WRONLY | O_CREAT | O_APPEND))
        defer { kill(pid, SIGTERM); _ = Spawn.waitStatus(pid) }
        let api = HTTPClient(host: "127.0.0.1", port: port)
        func query(_ expr: String) async throws -> (status: String, series: Int, error: String?) {
            var allowed = CharacterSet.urlQueryAllowed
            allowed.remove(charactersIn: "+&=")
            let response = try await api.request(.GET, "/api/v1/query?query=" + expr.addingPercentEncoding(withAllowedCharacters: allowed)!)
            let body = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] ?? [:]
            let result = (body["data"] as? [String: Any])?["result"] as? [Any] ?? []
            return (body["status"] as? String ?? "?", result.count, body["error"] as? String)
        }
        // Scraped with the token (health up), at least three times (rates need two samples).
        try await waitUntil("Prometheus scraping the master", timeout: 30) {
            (try? await query(#"count_over_time(up{job="mgpu"}[1m]) >= 3 and up{job="mgpu"} == 1"#))?.series == 1
        }
        #expect(try await query("mgpu_gpu_allocation").series == 1)
        let dashboard = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("docs/grafana/mgpu.json")))
            as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        #expect(panels.count >= 10 && Set(panels.compactMap { $0["id"] as? Int }).count == panels.count, "panels with distinct ids")
        var asked = 0
        for panel in panels {
            let title = panel["title"] as? String ?? "?"
            #expect(panel["gridPos"] is [String: Any] && panel["datasource"] is [String: Any], "\(title): placed, with a data source")
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                let expr = try #require(target["expr"] as? String)
                let concrete = expr.replacingOccurrences(of: "$node", with: ".*").replacingOccurrences(of: "$user", with: ".*")
                    .replacingOccurrences(of: "$__rate_interval", with: "1m")
                let answer = try await query(concrete)
                #expect(answer.status == "success" && answer.series > 0, "\(title): \(expr) -> \(answer)")
                asked += 1
            }
        }
        for variable in (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? [] {
            // label_values(METRIC, LABEL): the metric exists and has the label.
            let definition = try #require(variable["definition"] as? String)
            let inner = definition.dropFirst("label_values(".count).dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            #expect(try await query("count by (\(inner[1])) (\(inner[0]))").series > 0, "variable \(definition)")
        }
        #expect(asked >= 15)
    }
}

/// A TCP port nothing listens on now (the kernel's pick).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("no free port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}
