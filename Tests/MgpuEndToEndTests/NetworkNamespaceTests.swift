import Foundation
import MgpuClient
import MgpuCore
import MgpuSupervisor
import MgpuWire
import Testing

/// Test hosts on this machine: a bridge with the master's address in the root namespace, and one network
/// namespace per agent joined to it by a veth pair. Needs root and `ip netns`.
struct TestNetwork {
    let suffix: String
    let namespaces: [String]
    let bridge: String
    static let masterAddress = "10.77.0.1"
    static func agentAddress(_ i: Int) -> String { "10.77.0.\(10 + i)" }

    /// Why namespaces cannot be made here, or nil when they can.
    static let unavailableReason: String? = {
        guard getuid() == 0 else { return "not root" }
        let name = "mgpu-probe-\(getpid())"
        guard let (status, _) = try? Spawn.capture(["ip", "netns", "add", name]), status == 0 else {
            return "`ip netns add` failed (no iproute2, or not permitted in this sandbox)"
        }
        _ = try? Spawn.capture(["ip", "netns", "del", name])
        return nil
    }()

    static func make(agents: Int) throws -> TestNetwork {
        let suffix = String(UInt32.random(in: 0...0xFFFF), radix: 16)
        let net = TestNetwork(suffix: suffix, namespaces: (1...agents).map { "mgpu-\(suffix)-\($0)" }, bridge: "mgbr\(suffix)")
        try net.run(["ip", "link", "add", net.bridge, "type", "bridge"])
        try net.run(["ip", "addr", "add", "\(masterAddress)/24", "dev", net.bridge])
        try net.run(["ip", "link", "set", net.bridge, "up"])
        for (i, ns) in net.namespaces.enumerated() {
            let veth = "mgv\(suffix)\(i + 1)"
            try net.run(["ip", "netns", "add", ns])
            try net.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            try net.run(["ip", "link", "set", veth, "master", net.bridge, "up"])
            try net.run(["ip", "-n", ns, "addr", "add", "\(agentAddress(i + 1))/24", "dev", "eth0"])
            try net.run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            try net.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        }
        return net
    }

    func run(_ argv: [String]) throws {
        let (status, output) = try Spawn.capture(argv)
        guard status == 0 else { throw TestFailure("\(argv.joined(separator: " ")) failed (\(status)): \(output)") }
    }

    func destroy() {
        for ns in namespaces { _ = try? Spawn.capture(["ip", "netns", "del", ns]) }
        _ = try? Spawn.capture(["ip", "link", "del", bridge])
    }

    /// TCP sockets listening inside a namespace (from its /proc/net/tcp, state 0A).
    func listeningSockets(in ns: String) throws -> [String] {
        let (_, output) = try Spawn.capture(["ip", "netns", "exec", ns, "cat", "/proc/net/tcp", "/proc/net/tcp6"])
        return output.split(separator: "\n").filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[3] == "0A"
        }.map(String.init)
    }
}

extension EndToEndTests {
    @Suite struct NetworkNamespaceTests {
        @Test(.enabled(if: TestNetwork.unavailableReason == nil, "network namespaces: \(TestNetwork.unavailableReason ?? "")"))
        func agentsInTheirOwnNamespacesNeedNoInboundPortAndRendezvousAtRankZero() async throws {
            let net = try TestNetwork.make(agents: 2)
            defer { net.destroy() }
            let cluster = try TestCluster()
            defer { cluster.stop() }
            try await cluster.startMaster(["--host", "0.0.0.0"])
            for (i, ns) in net.namespaces.enumerated() {
                try cluster.startAgent("nsnode\(i + 1)", gpus: 1, masterHost: TestNetwork.masterAddress,
                                       prefix: ["ip", "netns", "exec", ns])
            }
            try await cluster.waitForNodes(["nsnode1", "nsnode2"])
            let nodes = try await cluster.client.queue().nodes
            #expect(Set(nodes.map(\.address)) == [TestNetwork.agentAddress(1), TestNetwork.agentAddress(2)],
                    "each node is known by the address it dialled out from")
            for ns in net.namespaces {
                #expect(try net.listeningSockets(in: ns).isEmpty, "nothing listens in \(ns): the agent only dials out")
            }

            // Rank 0 listens on MASTER_PORT; rank 1, in the other namespace, connects to MASTER_ADDR:MASTER_PORT.
            let script = """
                import os, socket, time
                rank, addr, port = int(os.environ["NODE_RANK"]), os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
                if rank == 0:
                    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", port)); s.listen(1)
                    s.settimeout(20); c, peer = s.accept(); print("rank 0 at", addr, "got:", c.recv(100).decode(), flush=True)
                else:
                    for _ in range(200):
                        try:
                            c = socket.create_connection((addr, port), timeout=1); break
                        except OSError: time.sleep(0.05)
                    c.sendall(b"hello from " + os.environ["MGPU_NODE_ID"].encode()); print("rank 1 sent", flush=True)
                """
            try script.write(toFile: cluster.dir + "/work/rdzv.py", atomically: true, encoding: .utf8)
            let run = try await cluster.mgpu(["srun", "--nodes", "2", "--gpus-per-node", "1", "--distributed", "--", "python3", "rdzv.py"])
            #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
            let job = try #require(try await cluster.client.queue().jobs.first)
            let rank0 = job.parts[0].nodeId, rank1 = job.parts[1].nodeId
            let rank0Address = try #require(nodes.first { $0.id == rank0 }?.address)
            #expect(run.stdout.contains("0: rank 0 at \(rank0Address) got: hello from \(rank1)"), "\(run.stdout)")
            #expect(run.stdout.contains("1: rank 1 sent"))
        }
    }
}
