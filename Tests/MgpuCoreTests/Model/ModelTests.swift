import Foundation
import MgpuCore
import Testing

@Suite struct JobIDTests {
    @Test func formatsAsEightUpperCaseHexDigits() {
        #expect(JobID(number: 0xF68F_AFEC).rawValue == "F68FAFEC")
        #expect(JobID(number: 0xAB).rawValue == "000000AB")
        #expect(JobID("f68fafec")?.rawValue == "F68FAFEC")
    }

    @Test(arguments: ["", "1234567", "123456789", "../../..", "ABCDEFG1", "12 45678", "ab/defgh"])
    func rejectsAnythingElse(_ text: String) {
        #expect(JobID(text) == nil)
    }

    /// Ids order by their hex digits, then a task's index as a number: compared as bytes, as the plain comparison of
    /// the first eight characters and the index did, on seeded random ids and tasks of a few shared arrays.
    @Test func orderMatchesThePlainComparison() {
        func plain(_ a: JobID, _ b: JobID) -> Bool {
            let (x, y) = (a.rawValue.prefix(8), b.rawValue.prefix(8))
            if x != y { return x < y }
            return (a.arrayIndex ?? -1) < (b.arrayIndex ?? -1)
        }
        var random = SeededRandom(seed: 17)
        let parents = (0..<4).map { _ in JobID.random(using: &random) }
        var ids = (0..<300).map { _ in JobID.random(using: &random) } + [JobID(number: 0), JobID(number: .max), JobID("abcdef01")!]
        for _ in 0..<300 {
            ids.append(JobID(parent: parents.randomElement(using: &random)!, index: Int.random(in: 0...JobID.maxArrayIndex, using: &random)))
        }
        ids += parents + [JobID(parent: parents[0], index: 9), JobID(parent: parents[0], index: 10)]
        // Ids that differ only in their last digits.
        for _ in 0..<40 {
            let n = UInt32.random(in: 0...UInt32.max, using: &random)
            ids += [JobID(number: n), JobID(number: n ^ 1), JobID(number: n ^ 0x10)]
        }
        for _ in 0..<20_000 {
            let (a, b) = (ids.randomElement(using: &random)!, ids.randomElement(using: &random)!)
            #expect((a < b) == plain(a, b), "\(a) < \(b)")
            // The order as one number (the master sorts its running jobs by it) is the same order.
            #expect((a.orderKey < b.orderKey) == plain(a, b) && (a.orderKey == b.orderKey) == (a == b), "\(a) vs \(b)")
        }
        #expect(ids.sorted { $0.orderKey < $1.orderKey } == ids.sorted(by: plain))
        #expect(JobID(parent: parents[0], index: 9) < JobID(parent: parents[0], index: 10))
        #expect(JobID(number: 0xA) < JobID(number: 0xB) && !(JobID(number: 0xB) < JobID(number: 0xA)))
        #expect(ids.sorted() == ids.sorted(by: plain))
    }

    @Test func decodingRejectsBadIds() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([JobID].self, from: Data(#"["../x"]"#.utf8)) }
    }
}

@Suite struct RequeueTests {
    @Test func requeueResetsTheRunAndExcludesTheFailedNodes() throws {
        var job = makeJob(1)
        try job.transition(to: .running, at: 10)
        job.parts = [JobPart(rank: 0, nodeId: "a", gpus: [0], exit: ExitStatus(error: "lost", nodeFailed: true))]
        job.terminating = true
        try job.requeueAfterNodeFailure(excluding: ["a"], reason: "node a lost", at: 20)
        #expect(job.state == .pending && job.parts.isEmpty && job.startTime == nil && !job.terminating)
        #expect(job.requeues == 1 && job.request.excludedNodes == ["a"])
        #expect(job.reason?.contains("node a lost") == true)
        // Placed again: never on the excluded node, on GPUs or on a CPU slot.
        let plan = Scheduler.plan(pending: [job], nodes: [node("a", gpus: 4), node("b", gpus: 1, busy: [0])])
        #expect(plan.assignments.isEmpty, "only node a has a free GPU, and a is excluded")
        let elsewhere = Scheduler.plan(pending: [job], nodes: [node("a", gpus: 4), node("b", gpus: 1)])
        #expect(elsewhere.assignments.first?.parts.first?.nodeId == "b")
        var cpu = makeJob(2, gpus: 0)
        cpu.request.excludedNodes = ["a"]
        #expect(Scheduler.plan(pending: [cpu], nodes: [node("a", gpus: 0, slots: 4), node("b", gpus: 0, slots: 1)])
            .assignments.first?.parts.first?.nodeId == "b")
        // A job that has not started cannot be requeued.
        var fresh = makeJob(3)
        #expect(throws: InvalidTransition.self) { try fresh.requeueAfterNodeFailure(excluding: [], reason: "x", at: 1) }
    }
}

@Suite struct StateMachineTests {
    @Test func allowedTransitions() {
        let allowed: Set<String> = ["PENDING>RUNNING", "PENDING>CANCELLED", "RUNNING>COMPLETED", "RUNNING>FAILED",
                                    "RUNNING>CANCELLED", "RUNNING>NODE_FAIL", "RUNNING>TIMEOUT",
                                    "RUNNING>PENDING"]
        for from in JobState.allCases {
            for to in JobState.allCases {
                #expect(from.canTransition(to: to) == allowed.contains("\(from.rawValue)>\(to.rawValue)"), "\(from) -> \(to)")
            }
        }
    }

    @Test func transitionSetsTimesAndRefusesIllegalMoves() throws {
        var job = makeJob(1)
        try job.transition(to: .running, at: 5)
        #expect(job.startTime == 5)
        try job.transition(to: .completed, at: 7)
        #expect(job.endTime == 7)
        #expect(throws: InvalidTransition.self) { try job.transition(to: .running, at: 8) }
    }

    @Test func outcomeOfParts() {
        var job = makeJob(1)
        job.parts = [JobPart(rank: 0, nodeId: "a", gpus: [0]), JobPart(rank: 1, nodeId: "b", gpus: [0])]
        #expect(job.outcome() == nil)
        job.parts[0].exit = ExitStatus(code: 0)
        job.parts[1].exit = ExitStatus(code: 3)
        #expect(job.outcome()?.state == .failed)
        #expect(job.outcome()?.exit == ExitStatus(code: 3))
        #expect(job.outcome()?.reason == "rank 1 on b: exit code 3")
        job.parts[1].exit = ExitStatus(error: "lost", nodeFailed: true)
        #expect(job.outcome()?.state == .nodeFail)
        job.parts[1].exit = ExitStatus(signal: 15)
        job.cancelRequested = true
        #expect(job.outcome()?.state == .cancelled)
        job.cancelRequested = false
        job.parts[1].exit = ExitStatus(code: 0)
        #expect(job.outcome()?.state == .completed)
    }

    @Test func shellCodes() {
        #expect(ExitStatus(code: 3).shellCode == 3)
        #expect(ExitStatus(signal: 9).shellCode == 137)
    }
}

@Suite struct TextTests {
    @Test func gpuListsAreCompact() {
        #expect(GPUList.compact([0, 1, 2, 3]) == "0-3")
        #expect(GPUList.compact([3, 0, 1]) == "0,1,3")
        #expect(GPUList.compact([0, 2]) == "0,2")
        #expect(GPUList.compact([0, 1, 2, 5, 6, 7, 9]) == "0-2,5-7,9")
    }

    @Test func pinnedListsParse() throws {
        let parsed = try PinnedGPUs.parseList("node001:0,1;node002:0").get()
        #expect(parsed == [PinnedGPUs(nodeId: "node001", gpus: [0, 1]), PinnedGPUs(nodeId: "node002", gpus: [0])])
    }

    @Test(arguments: ["", "node001", "node001:", "node001:a", ":0", "node001:-1", "node001:0,,1"])
    func badPinnedListsAreRefused(_ text: String) {
        if case .success = PinnedGPUs.parseList(text) { Issue.record("accepted \(text.debugDescription)") }
    }

    @Test func waitingReasons() {
        #expect(makeJob(1, gpus: 2).waitingReason == "waiting for 2 GPUs")
        #expect(makeJob(1).waitingReason == "waiting for 1 GPU")
        #expect(makeJob(1, pinned: [PinnedGPUs(nodeId: "n", gpus: [0, 1])]).waitingReason == "waiting for n:gpu0,1")
    }
}

@Suite struct MultiPartOutcomeTests {
    @Test func theRankThatFailedFirstIsTheCauseNotTheOnesTerminatedBecauseOfIt() {
        var job = makeJob(1)
        job.parts = (0..<3).map { JobPart(rank: $0, nodeId: "n\($0)", gpus: [0]) }
        job.parts[1].exit = ExitStatus(code: 5)
        job.terminating = true
        job.failedRank = 1
        job.parts[0].exit = ExitStatus(signal: 15)
        job.parts[2].exit = ExitStatus(signal: 15)
        #expect(job.outcome()?.state == .failed)
        #expect(job.outcome()?.exit == ExitStatus(code: 5))
        #expect(job.outcome()?.reason == "rank 1 on n1: exit code 5")
    }

    @Test func aLostNodeMakesTheJobNodeFail() {
        var job = makeJob(1)
        job.parts = (0..<2).map { JobPart(rank: $0, nodeId: "n\($0)", gpus: [0]) }
        job.parts[1].exit = ExitStatus(error: "node n1 lost", nodeFailed: true)
        job.failedRank = 1
        job.parts[0].exit = ExitStatus(signal: 15)
        #expect(job.outcome()?.state == .nodeFail)
        #expect(job.outcome()?.reason == "node n1 lost")
    }
}

@Suite struct TimeLimitTests {
    @Test(arguments: [("5", 300.0), ("5:30", 330), ("1:02:03", 3723), ("2-0", 172_800), ("1-2", 93_600), ("1-2:30", 95_400),
                      ("1-02:03:04", 93_784), (" 10 ", 600)])
    func slurmFormats(_ text: String, _ seconds: Double) {
        #expect(TimeLimit.parse(text) == .some(seconds))
    }

    @Test(arguments: ["", "x", "1:2:3:4", "-5", "1-", "1-2:3:4:5", "5:-1", "a-1"])
    func nonsenseIsRefused(_ text: String) {
        #expect(TimeLimit.parse(text) == nil)
    }

    @Test func unlimited() {
        #expect(TimeLimit.parse("UNLIMITED") == .some(nil))
        #expect(TimeLimit.parse("0") == .some(nil))
    }

    @Test func aTimedOutPartMakesTheJobTIMEOUT() {
        var job = makeJob(1)
        job.timeLimit = 60
        job.parts = [JobPart(rank: 0, nodeId: "a", gpus: [0], exit: ExitStatus(signal: 15, timedOut: true))]
        #expect(job.outcome()?.state == .timeout)
        #expect(job.outcome()?.reason == "time limit of 60 s reached")
        #expect(JobState.running.canTransition(to: .timeout))
        #expect(!JobState.pending.canTransition(to: .timeout))
    }
}

@Suite struct RingBufferTests {
    @Test func keepsTheNewestInOrder() {
        var ring = RingBuffer<Int>(capacity: 3)
        #expect(ring.elements.isEmpty)
        for i in 1...2 { ring.append(i) }
        #expect(ring.elements == [1, 2])
        for i in 3...7 { ring.append(i) }
        #expect(ring.elements == [5, 6, 7])
        #expect(ring.count == 3)
    }

    @Test func foreignGPUsAreUnavailableOnlyWhenAvoided() {
        var t = NodeTelemetry(time: 1, gpus: [GPUTelemetry(index: 0, inUseOutside: true), GPUTelemetry(index: 1)])
        #expect(t.unavailableGPUs == [0])
        t.avoidForeign = false
        #expect(t.unavailableGPUs.isEmpty)
    }
}
