import Foundation
import MgpuClient
import MgpuCore
import MgpuWire
import Testing

/// mgpu keeps glibc's malloc to two arenas (the main heap and one more), so memory its threads free is not left
/// scattered over a heap per thread; MALLOC_ARENA_MAX in the environment still decides where it is set.
extension EndToEndTests {
    @Suite struct MallocArenaTests {
        /// The master's malloc arenas besides the main heap. glibc maps each arena's heap as a 64 MiB reservation
        /// aligned to 64 MiB: the part in use read-write, the rest `---p` right after it, to the block's end. (Only
        /// the alignment is not enough: now and then a thread's stack, 8 MiB read-write, starts on such a boundary.)
        static func arenas(_ pid: pid_t) throws -> Int {
            let block: UInt64 = 64 << 20
            let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8).split(separator: "\n").compactMap { line -> (start: UInt64, end: UInt64, perms: String)? in
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                let range = fields.first?.split(separator: "-") ?? []
                guard fields.count == 5, fields[4] == "0", range.count == 2,
                      let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16) else { return nil }
                return (start: start, end: end, perms: String(fields[1]))
            }
            return maps.indices.filter { i in
                let m = maps[i]
                guard m.perms == "rw-p", m.start % block == 0 else { return false }
                if m.end - m.start == block { return true }
                guard i + 1 < maps.count else { return false }
                let rest = maps[i + 1]
                return rest.perms == "---p" && rest.start == m.end && rest.end == m.start + block
            }.count
        }

        /// Submissions and listings from 32 clients at once: the master's threads all allocate.
        static func load(_ cluster: TestCluster) async throws {
            let client = cluster.client
            let spec = JobSpec(name: "a", user: unixUser, command: "true", workdir: "/tmp", environment: [:],
                               request: ResourceRequest(gpusPerNode: 1))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<32 {
                    group.addTask {
                        for _ in 0..<10 {
                            if i % 2 == 0 { _ = try await client.submit([spec]) } else { _ = try await client.queueJSON() }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }

        @Test func theMasterKeepsTwoArenasUnlessTheEnvironmentSaysOtherwise() async throws {
            // glibc's default (here through the environment): the same load spreads over several arenas, which is
            // what the count sees.
            let free = try TestCluster()
            defer { free.stop() }
            try await free.startMaster([], env: ["MALLOC_ARENA_MAX": "8"])
            try free.startAgent("node001", gpus: 1)
            try await free.waitForNodes(["node001"])
            try await Self.load(free)
            let spread = try Self.arenas(free.masterPid)
            #expect(spread >= 2, "with MALLOC_ARENA_MAX=8 the load used \(spread) arenas besides the main heap")

            let cluster = try TestCluster()
            defer { cluster.stop() }
            try await cluster.startMaster()
            try cluster.startAgent("node001", gpus: 1)
            try await cluster.waitForNodes(["node001"])
            try await Self.load(cluster)
            let kept = try Self.arenas(cluster.masterPid)
            #expect(kept <= 1, "mgpu's own limit: \(kept) arenas besides the main heap")
        }
    }
}
