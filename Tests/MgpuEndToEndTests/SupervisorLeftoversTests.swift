import CMgpuSpawn
import Foundation
import MgpuSupervisor
import Testing

/// What a job leaves behind ends with it (as Slurm's process tracking does): a process that left the job's group
/// (`setsid`) and a daemon (a double fork into a session of its own, its parent gone) are killed when the job's main
/// process ends, before the job's end is recorded; on a GPU node, that is the GPU memory they held, freed.
@Suite struct SupervisorLeftoversTests {
    @Test func processesThatLeftTheJobsGroupEndWithIt() throws {
        let (root, dir) = try makeJobFolder(prefix: "mgpu-leftovers") { root in
            """
            setsid sleep 301 </dev/null >/dev/null 2>&1 & echo $! > \(root)/escaped
            ( setsid sh -c 'sleep 302 </dev/null >/dev/null 2>&1 & echo $! > \(root)/daemon' & )
            while [ ! -s \(root)/daemon ]; do sleep 0.01; done
            exit 0
            """
        }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let started = Date()
        let pid = try Spawn.start([supervisorBinary, "_supervise", dir, "1"], stdout: .devNull, stderr: .devNull)
        #expect(Spawn.waitStatus(pid) == 0)
        #expect(Date().timeIntervalSince(started) < 5, "it does not wait for its leftovers to end by themselves")
        #expect(try String(contentsOfFile: dir + "/exit", encoding: .utf8) == "code 0\n")
        for name in ["escaped", "daemon"] {
            let text = try String(contentsOfFile: root + "/" + name, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let leftover = try #require(pid_t(text), "\(name): \(text)")
            let alive = kill(leftover, 0) == 0
            if alive { kill(leftover, SIGKILL) }
            #expect(!alive, "\(name) (pid \(leftover)) outlived its job")
        }
    }

    /// Orphans of a running job that end are reaped as they come, not kept as zombies until the job ends (they would
    /// count against the owner's process limit all the while).
    @Test func orphansThatEndWhileTheJobRunsAreReaped() throws {
        let (root, dir) = try makeJobFolder(prefix: "mgpu-orphans") { root in
            """
            for i in 1 2 3 4 5 6 7 8 9 10; do ( sh -c 'exit 0' & ); done
            touch \(root)/ready
            while [ ! -e \(root)/done ]; do sleep 0.05; done
            """
        }
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pid = try Spawn.start([supervisorBinary, "_supervise", dir, "1"], stdout: .devNull, stderr: .devNull)
        defer {
            FileManager.default.createFile(atPath: root + "/done", contents: nil)
            _ = Spawn.waitStatus(pid)
        }
        /// The supervisor's children that are zombies.
        func zombies() -> [String] {
            let list = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
            return list.split(separator: " ").filter { child in
                let stat = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8)) ?? ""
                return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
            }.map(String.init)
        }
        let start = Date()
        while !FileManager.default.fileExists(atPath: root + "/ready") && Date().timeIntervalSince(start) < 10 { usleep(10_000) }
        // Each orphan's end wakes the supervisor (SIGCHLD): give it until then and a little.
        var left = zombies()
        while !left.isEmpty && Date().timeIntervalSince(start) < 5 {
            usleep(20_000)
            left = zombies()
        }
        #expect(left.isEmpty, "zombies of the running job's orphans: \(left)")
    }
}
