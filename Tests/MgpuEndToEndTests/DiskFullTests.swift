import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

extension EndToEndTests {
/// The master's state directory on a small tmpfs that the test fills up (mounting needs root).
@Suite struct DiskFullTests {
    @Test(.enabled(if: geteuid() == 0, "mounting a small tmpfs needs root"))
    func fullDiskRefusesSubmitsClearlyLosesNothingAndRecovers() async throws {
        let cluster = try TestCluster()
        let state = cluster.dir + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let mount = try await cluster.mgpu([], viaShell: "mount -t tmpfs -o size=4m,mode=0700 tmpfs '\(state)'")
        try #require(mount.status == 0, "mount: \(mount.stderr)")
        defer {
            cluster.stop()
            _ = umount2(state, Int32(MNT_DETACH))
        }
        try await cluster.startMaster()
        try cluster.startAgent("node001", gpus: 1)
        try await cluster.waitForNodes(["node001"])
        let holder = try await cluster.submit(["sleep 300"])
        try await cluster.waitForState(holder, [.running])

        let client = cluster.client
        let spec = JobSpec(name: nil, user: "x", command: "true", workdir: "/tmp", environment: ["A": String(repeating: "x", count: 2000)],
                           request: ResourceRequest(gpusPerNode: 1))
        var accepted = try await client.submit(Array(repeating: spec, count: 20))

        // Fill the file system, then submit until the store cannot take more.
        let fill = try await cluster.mgpu([], viaShell: "dd if=/dev/zero of='\(state)/filler' bs=4096 2>&1; df -k '\(state)'")
        #expect(fill.stdout.contains("No space left"), "dd filled the disk: \(fill.stdout)")
        var refusal: String?
        for _ in 0..<2000 {
            do { accepted += try await client.submit([spec]) } catch { refusal = "\(error)"; break }
        }
        let firstRefusal = try #require(refusal, "a submit was refused once the disk was full (\(accepted.count - 20) accepted after dd)")
        #expect(firstRefusal.contains("disk is full"), "\(firstRefusal)")

        // The CLI says so in one line and exits non-zero; reads still work; the master is still there.
        let cli = try await cluster.mgpu(["submit", "true"])
        #expect(cli.status != 0)
        #expect(cli.stderr.contains("disk is full"), "\(cli.stderr)")
        #expect(cli.stderr.split(separator: "\n").count == 1, "one line: \(cli.stderr)")
        #expect(try await cluster.mgpu(["queue"]).status == 0, "queue still answers")
        #expect(Glibc.kill(cluster.masterPid, 0) == 0, "the master is still running")

        // Space returns: submits work again without a restart.
        try FileManager.default.removeItem(atPath: state + "/filler")
        let after = try await cluster.submit(["--gpus", "1", "true"])

        // Nothing accepted was lost: every acknowledged job is there exactly once after a restart.
        Glibc.kill(cluster.masterPid, SIGTERM)
        #expect(try await waitForExit(cluster.masterPid, timeout: 20) == 0)
        try await cluster.startMaster()
        let ids = try await client.queue().jobs.map(\.id)
        #expect(Set(ids).count == ids.count, "no job twice")
        let missing = Set(accepted + [after, holder]).subtracting(ids)
        #expect(missing.isEmpty, "\(missing.count) of \(accepted.count + 2) acknowledged jobs lost")
        _ = try await cluster.mgpu(["cancel", holder.rawValue])
    }
}
}
