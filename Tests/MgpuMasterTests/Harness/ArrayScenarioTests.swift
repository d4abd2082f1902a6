import MgpuCore
import MgpuMaster
import MgpuWire
import Testing

/// Array jobs (`--array`) through the real MasterState: one record for the tasks not started, tasks as jobs `ID_N`,
/// `%MAX`, cancel of one task or all, dependencies on an array, a master restart.
@Suite struct ArrayScenarioTests {
    func array(_ first: Int, _ last: Int, max: Int? = nil) -> ArrayRequest {
        ArrayRequest(tasks: TaskIndices([.init(first: first, last: last)]), maxRunning: max)
    }

    func runningTasks(_ h: Harness) -> Int { h.agents.values.reduce(0) { $0 + $1.running.count } }

    @Test func tasksStartFromOneRecordAtMostMaxAtOnce() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 4, plan: { _ in (10, ExitStatus(code: 0)) })
        let id = try await h.submit("task") { $0.array = self.array(0, 4, max: 2) }
        let after = try await h.submit("after") { $0.dependencies = [Dependency(kind: .afterany, jobs: [id])] }
        try await h.settle()
        let first = h.agents["n1"]!.started
        #expect(first.map(\.jobId) == [JobID(parent: id, index: 0), JobID(parent: id, index: 1)], "4 GPUs free, %2")
        #expect(first[1].environment["MGPU_ARRAY_JOB_ID"] == id.rawValue && first[1].environment["MGPU_ARRAY_TASK_ID"] == "1")
        #expect(first[1].environment["MGPU_ARRAY_TASK_COUNT"] == "5" && first[1].environment["MGPU_ARRAY_TASK_MAX"] == "4")
        let record = try #require(await h.job(id))
        #expect(record.state == .pending && record.array?.pendingText == "[2-4%2]")
        #expect(record.note == "waiting: 2 of its tasks run, its limit (%2)")
        #expect(await h.state(after) == .pending)

        // A task that has not started is cancelled on its own: it becomes a CANCELLED job, the record loses it.
        let cancelled = try await h.master.cancel([JobID(parent: id, index: 3).rawValue])
        #expect(cancelled.map(\.outcome) == [.cancelled])
        #expect(await h.state(JobID(parent: id, index: 3)) == .cancelled)
        #expect(await h.job(id)?.array?.pendingText == "[2,4%2]")

        var most = runningTasks(h)
        for _ in 0..<3 {
            await h.advance(10)
            try await h.settle()
            most = max(most, h.agents["n1"]!.running.keys.filter { $0.arrayParent == id }.count)
            #expect(await h.state(after) != .cancelled, "the array's record may be gone; its tasks still run")
        }
        #expect(most <= 2)
        #expect(await h.job(id) == nil, "every task started or was cancelled: the record is gone")
        for index in [0, 1, 2, 4] { #expect(await h.state(JobID(parent: id, index: index)) == .completed) }
        let afterState = await h.state(after)
        #expect(afterState == .running || afterState == .completed, "afterany: every task ended (\(String(describing: afterState)))")
    }

    @Test func cancellingTheArrayCancelsTheRestAndTheRunningTasks() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 2)
        let id = try await h.submit("task") { $0.array = self.array(0, 9) }
        let ok = try await h.submit("ok") { $0.dependencies = [Dependency(kind: .afterok, jobs: [id])] }
        try await h.settle()
        #expect(h.agents["n1"]!.running.count == 2)
        #expect(await h.job(id)?.array?.pendingText == "[2-9]")
        let result = try await h.master.cancel([id.rawValue])
        #expect(result.map(\.outcome) == [.cancelling], "two tasks were running")
        try await h.settle()
        #expect(h.agents["n1"]!.running.isEmpty, "the running tasks were stopped")
        let record = await h.job(id)
        #expect(record?.state == .cancelled && record?.array?.pendingText == "[2-9]", "the record keeps what never ran")
        #expect(await h.job(ok)?.reason == "dependency never satisfied: job \(id) ended CANCELLED")
    }

    @Test func anArraySurvivesAMasterRestart() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 4, plan: { _ in (10, ExitStatus(code: 0)) })
        let id = try await h.submit("task") { $0.array = self.array(0, 5, max: 2) }
        try await h.settle()
        try h.restartMaster()
        try await h.settle()
        #expect(runningTasks(h) == 2, "the limit still holds with the running count rebuilt from the store")
        #expect(await h.job(id)?.array?.pendingText == "[2-5%2]")
        for _ in 0..<4 {
            await h.advance(10)
            try await h.settle()
            #expect(runningTasks(h) <= 2)
        }
        #expect(await h.job(id) == nil)
        #expect(await h.master.queue(finishedWithin: 1e9).jobs.filter { $0.id.arrayParent == id && $0.state == .completed }.count == 6)
    }

    @Test func aTaskIdNamesOnlyARealTask() async throws {
        let h = try Harness()
        try await h.addNode("n1", gpus: 1)
        let id = try await h.submit("task") { $0.array = self.array(0, 2) }
        let plain = try await h.submit("plain")
        await #expect(throws: RequestError.self, "no task 7") {
            _ = try await h.submit("x") { $0.dependencies = [Dependency(kind: .afterok, jobs: [JobID(parent: id, index: 7)])] }
        }
        _ = try await h.submit("x") { $0.dependencies = [Dependency(kind: .after, jobs: [JobID(parent: id, index: 2)])] }
        let unknown = try await h.master.cancel([JobID(parent: plain, index: 0).rawValue, JobID(parent: id, index: 9).rawValue])
        #expect(unknown.map(\.outcome) == [.unknown, .unknown])
    }
}
