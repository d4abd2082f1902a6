@testable import MgpuCore
import Testing

/// How an array's record enters a pass: its next tasks, within `%MAX` and what is free.
@Suite struct ArrayExpansionTests {
    let parent = JobID(number: 0xA)

    func record(_ first: Int, _ last: Int, max: Int? = nil) -> JobArray {
        JobArray(TaskIndices([.init(first: first, last: last)]), maxRunning: max)
    }

    func expand(_ queue: [PendingJob], free: Int, arrays: [JobID: JobArray], running: [JobID: Int] = [:],
                taskLimits: [JobID: Int] = [:]) -> [String] {
        Scheduler.expandArrays(queue, nodes: [node("a", gpus: 8, busy: Set(free..<8))], array: { arrays[$0] },
                               taskLimit: { taskLimits[$0] }, running: { running[$0] ?? 0 }).map(\.id.rawValue)
    }

    @Test func asManyTasksAsFitPlusOne() {
        let queue = [PendingJob(id: parent, request: ResourceRequest(gpusPerNode: 2)), pending(1)]
        #expect(expand(queue, free: 5, arrays: [parent: record(0, 99)]) == ["0000000A_0", "0000000A_1", "0000000A_2", "00000001"],
                "5 free GPUs take two 2-GPU tasks; one more waits and may hold the reservation")
        #expect(expand(queue, free: 0, arrays: [parent: record(3, 4)]) == ["0000000A_3", "00000001"])
    }

    @Test func percentMaxCountsRunningAndRequeuedTasks() {
        let queue = [PendingJob(id: JobID(parent: parent, index: 0), request: ResourceRequest(gpusPerNode: 1)),
                     PendingJob(id: parent, request: ResourceRequest(gpusPerNode: 1))]
        let limits = [JobID(parent: parent, index: 0): 3]
        #expect(expand(queue, free: 8, arrays: [parent: record(1, 9, max: 3)], running: [parent: 1], taskLimits: limits)
                == ["0000000A_0", "0000000A_1"], "%3: one runs, one requeued task waits: one more")
        #expect(expand(queue, free: 8, arrays: [parent: record(1, 9, max: 3)], running: [parent: 3], taskLimits: limits) == [],
                "at its limit, not even the requeued task")
        #expect(expand(queue, free: 8, arrays: [parent: record(1, 9, max: 3)], running: [:], taskLimits: limits)
                == ["0000000A_0", "0000000A_1", "0000000A_2"])
    }

    @Test func cpuOnlyArraysCountSlots() {
        let queue = [PendingJob(id: parent, request: ResourceRequest(gpusPerNode: 0))]
        // node("a") has 4 CPU slots.
        #expect(expand(queue, free: 0, arrays: [parent: record(0, 9)]).count == 5)
    }
}
