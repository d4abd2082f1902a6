import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

extension EndToEndTests {
/// A master with --tls-cert/--tls-key and a self-signed certificate made here with openssl: agents, the CLI and
/// the dashboard over HTTPS; plain HTTP and untrusted certificates refused with one clear line.
@Suite struct TLSTests {
    static func makeCertificate(in dir: String, name: String) async throws -> (cert: String, key: String) {
        let cert = "\(dir)/\(name).pem", key = "\(dir)/\(name).key"
        let pid = try Spawn.start(["/usr/bin/env", "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                   "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                                   "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                                  stdout: .devNull, stderr: .devNull)
        try #require(try await waitForExit(pid, timeout: 30) == 0, "openssl made a certificate")
        return (cert, key)
    }

    @Test func agentsClientsAndDashboardOverHTTPS() async throws {
        let cluster = try TestCluster()
        defer { cluster.stop() }
        let (cert, key) = try await Self.makeCertificate(in: cluster.dir, name: "master")
        try await cluster.startMaster(["--tls-cert", cert, "--tls-key", key])
        cluster.caCert = cert
        let out = try FileManager.default.contentsOfDirectory(atPath: cluster.dir).filter { $0.hasPrefix("master.") && $0.hasSuffix(".out") }
        #expect(out.count == 1 && cluster.read(out[0])?.contains("listening on https://") == true)
        try cluster.startAgent("node001", gpus: 1)
        try await cluster.waitForNodes(["node001"])

        let id = try await cluster.submit(["echo over tls"])
        try await cluster.waitForState(id, [.completed])
        let logs = try await cluster.mgpu(["logs", id.rawValue])
        #expect(logs.stdout == "over tls\n", "\(logs.stderr)")
        let page = try await cluster.client.http.request(.GET, "/")
        #expect(page.status == 200 && String(decoding: page.body, as: UTF8.self).contains("<html"), "the dashboard over HTTPS")

        // Plain HTTP to an HTTPS master, and HTTPS without trusting its certificate: one line each, exit 2.
        let plain = try await cluster.mgpu(["queue"], env: ["MGPU_CA_CERT": ""])
        #expect(plain.status == 2 && plain.stderr.split(separator: "\n").count == 1, "\(plain.stderr)")
        let untrusted = try await cluster.mgpu(["queue"], env: ["MGPU_CA_CERT": "", "MGPU_TLS": "1"])
        #expect(untrusted.status == 2 && untrusted.stderr.contains("not trusted"), "\(untrusted.stderr)")
        let missing = try await cluster.mgpu(["queue", "--ca-cert", cluster.dir + "/none.pem"])
        #expect(missing.status == 2 && missing.stderr.contains("none.pem"), "\(missing.stderr)")

        // TLS 1.2 at least: a client that offers only TLS 1.1 (allowed on its side) is refused; TLS 1.2 is served.
        func handshake(_ version: String) async throws -> String {
            try await cluster.mgpu([], viaShell: "openssl s_client -connect 127.0.0.1:\(cluster.port) \(version) -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1").stdout
        }
        #expect(try await handshake("-tls1_2").contains("Protocol  : TLSv1.2"))
        let old = try await handshake("-tls1_1")
        #expect(old.contains("alert protocol version") && !old.contains("BEGIN CERTIFICATE"), "TLS 1.1 was served: \(old.prefix(400))")

        // A key that is not the certificate's: the master refuses to start, saying so.
        let (_, otherKey) = try await Self.makeCertificate(in: cluster.dir, name: "other")
        let wrong = try await cluster.mgpu(["master", "--port", "0", "--state-dir", cluster.dir + "/state2", "--tls-cert", cert, "--tls-key", otherKey])
        #expect(wrong.status != 0 && wrong.stderr.contains("cannot use") && wrong.stderr.split(separator: "\n").count == 1, "\(wrong.stderr)")
    }
}
}
