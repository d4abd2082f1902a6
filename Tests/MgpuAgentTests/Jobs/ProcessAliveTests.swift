import Foundation
@testable import MgpuAgent
import MgpuSupervisor
import Testing

@Suite struct ProcessAliveTests {
    /// Right after posix_spawn returns, the child may still be in exec with an empty /proc/PID/cmdline;
    /// it must not be taken for dead (the agent once declared such supervisors dead and deleted their jobs).
    @Test func aJustSpawnedProcessIsAlive() throws {
        for i in 0..<40 {
            let marker = NSTemporaryDirectory() + "alive-\(i)-\(UUID().uuidString)"
            let pid = try Spawn.start(["/bin/sh", "-c", "sleep 1", marker], stdout: .devNull, stderr: .devNull)
            defer { kill(pid, SIGKILL); _ = Spawn.waitStatus(pid) }
            #expect(processAlive(pid, commandLineContains: marker), "spawn \(i)")
        }
    }

    @Test func otherProcessesAndDeadOnesAreNot() throws {
        let pid = try Spawn.start(["/bin/sh", "-c", "sleep 1", "/tmp/one-marker"], stdout: .devNull, stderr: .devNull)
        usleep(100_000)
        #expect(!processAlive(pid, commandLineContains: "/tmp/another-marker"), "a reused pid is not our supervisor")
        kill(pid, SIGKILL)
        usleep(50_000)
        #expect(!processAlive(pid, commandLineContains: "/tmp/one-marker"), "a zombie is dead")
        #expect(reapIfExited(pid))
        #expect(!processAlive(pid, commandLineContains: "/tmp/one-marker"))
    }
}

@Suite struct SpawnTests {
    @Test func childrenInheritOnlyStandardDescriptors() throws {
        let leaked = open("/dev/null", O_RDONLY)  // not close-on-exec
        defer { close(leaked) }
        let (status, output) = try Spawn.capture(["/bin/sh", "-c", "ls /proc/self/fd"])
        #expect(status == 0)
        let fds = Set(output.split(separator: "\n").compactMap { Int32($0) })
        #expect(!fds.contains(leaked), "fd \(leaked) leaked into the child: \(fds.sorted())")
    }

    @Test func childrenStartWithAnEmptySignalMask() throws {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        defer { pthread_sigmask(SIG_UNBLOCK, &set, nil) }
        let (_, output) = try Spawn.capture(["/bin/sh", "-c", "grep SigBlk /proc/self/status"])
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("0000000000000000"), "\(output)")
    }
}
