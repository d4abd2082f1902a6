import Foundation
import MgpuCore
import Testing

/// `--array`'s indices (Slurm's form) and task ids `ID_N`.
@Suite struct JobArrayTests {
    func parsed(_ text: String) throws -> (TaskIndices, Int?) {
        try TaskIndices.parse(text).get()
    }

    @Test func slurmsFormsParse() throws {
        #expect(try parsed("0-99").0.count == 100)
        #expect(try parsed("0-99").1 == nil)
        let (stepped, limit) = try parsed("0-98:2%8")
        #expect(stepped.count == 50 && limit == 8 && stepped.max == 98 && stepped.text == "0-98:2")
        #expect(try parsed("0-9:4").0.prefix(10) == [0, 4, 8], "a step that overshoots stops at the last index under it")
        #expect(try parsed("0-9:4").0.text == "0-8:4")
        let (list, _) = try parsed("5-7,1,3")
        #expect(list.prefix(10) == [1, 3, 5, 6, 7] && list.text == "1,3,5-7", "runs are kept in order")
        #expect(try parsed("7").0.prefix(5) == [7])
        #expect(try parsed("9999990-\(JobID.maxArrayIndex)").0.count == 10, "indices go up to 9999999")
    }

    @Test(arguments: ["", "-1", "a-b", "3-1", "0-9:0", "0-9:-1", "1:2", "0-9%", "0-9%0", "0-9%x", "1,,2", "0-10000000",
                      "1-2-3", "0-99999999", "1,1", "0-5,3", "1-1:9223372036854775807", "0-9:99999999"])
    func badIndicesAreRefusedInOneLine(_ text: String) {
        guard case .failure(let error) = TaskIndices.parse(text) else {
            Issue.record("\(text.debugDescription) was accepted")
            return
        }
        #expect(error.message.hasPrefix("--array") && !error.message.contains("\n"), "\(error.message)")
    }

    @Test func decodedIndicesAreBounded() throws {
        for bad in [#"[{"first":1,"last":1,"step":9223372036854775807}]"#, #"[{"first":0,"last":10000000,"step":1}]"#,
                    #"[{"first":-1,"last":3,"step":1}]"#, #"[{"first":0,"last":3,"step":0}]"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(TaskIndices.self, from: Data(bad.utf8)) }
        }
        let ok = try JSONDecoder().decode(TaskIndices.self, from: Data(#"[{"first":0,"last":9999999,"step":9999999}]"#.utf8))
        #expect(ok.count == 2 && ok.validationError == nil)
    }

    @Test func tooManyTasksAreRefused() {
        guard case .failure(let error) = TaskIndices.parse("0-100000") else {
            Issue.record("100,001 tasks were accepted")
            return
        }
        #expect(error.message == "--array makes at most 100000 tasks; got more")
        #expect((try? parsed("0-99999"))?.0.count == 100_000)
    }

    @Test func removingATaskSplitsItsRun() throws {
        var tasks = try parsed("0-10:2").0
        tasks.remove(4)
        #expect(tasks.text == "0-2:2,6-10:2" && tasks.count == 5)
        tasks.remove(0)
        tasks.remove(10)
        tasks.remove(5)  // not there
        #expect(tasks.text == "2,6-8:2" && tasks.prefix(9) == [2, 6, 8])
        for i in [2, 6, 8] { tasks.remove(i) }
        #expect(tasks.isEmpty && tasks.text == "")
    }

    /// Removing indices one at a time, in a random order, always leaves exactly the others, in order.
    @Test func removalMatchesASetOfIndices() throws {
        var random = SeededRandom(seed: 14)
        for _ in 0..<200 {
            let first = Int.random(in: 0...20, using: &random), step = Int.random(in: 1...4, using: &random)
            let last = first + Int.random(in: 0...60, using: &random)
            var tasks = TaskIndices([.init(first: first, last: last, step: step)])
            var model = Array(stride(from: first, through: last, by: step))
            for i in model.shuffled(using: &random).prefix(Int.random(in: 0...model.count, using: &random)) {
                tasks.remove(i)
                model.removeAll { $0 == i }
                #expect(tasks.prefix(Int.max) == model && tasks.count == model.count)
                #expect(model.allSatisfy(tasks.contains) && !tasks.contains(i))
            }
            #expect(tasks.validationError == nil || model.isEmpty)
        }
    }

    @Test func taskIDs() throws {
        let parent = try #require(JobID("3f2a9c01"))
        let task = JobID(parent: parent, index: 10)
        #expect(task.rawValue == "3F2A9C01_10" && task.arrayParent == parent && task.arrayIndex == 10)
        #expect(JobID("3f2a9c01_10") == task && parent.arrayParent == nil && parent.arrayIndex == nil)
        #expect(JobID(parent: parent, index: 9) < task, "_9 before _10")
        #expect(parent < JobID(parent: parent, index: 0))
        for bad in ["3F2A9C01_", "3F2A9C01_01", "3F2A9C01_-1", "3F2A9C01_1_2", "3F2A9C01_12345678", "3F2A9C01-1",
                    "3F2A9C01_ 1", "3F2A9C01_../x", "3F2A9C0_1"] {
            #expect(JobID(bad) == nil, "\(bad)")
        }
        #expect(JobID("3F2A9C01_9999999") != nil)
    }

    @Test func theRecordShowsThePendingRest() throws {
        var array = JobArray(try parsed("0-99").0, maxRunning: 8)
        for i in 0..<10 { array.pending.remove(i) }
        #expect(array.pendingText == "[10-99%8]" && array.count == 100 && array.min == 0 && array.max == 99)
    }
}

/// `--output`/`--error` patterns, as Slurm fills them in.
@Suite struct OutputPatternTests {
    @Test func slurmsFields() {
        let task = JobID(parent: JobID(number: 0x3F2A9C01), index: 7)
        #expect(OutputFiles.expand("slurm-%j.out", job: task, user: "alice", name: "x", node: "n1", rank: 0) == "slurm-3F2A9C01_7.out")
        #expect(OutputFiles.expand("%A_%a-%u-%x-%N-%t-100%%-%q", job: task, user: "alice", name: "a/b c", node: "n1", rank: 2)
                == "3F2A9C01_7-alice-a_b c-n1-2-100%-%q")
        #expect(OutputFiles.expand("%A.%a.out%", job: JobID(number: 1), user: "u", name: "n", node: "n", rank: 0) == "00000001.4294967294.out%")
        let wrapped = OutputFiles(output: "it's %j.log").wrap("echo hi", job: JobID(number: 1), user: "u", name: "n", node: "n", rank: 0)
        #expect(wrapped == "exec >'it'\\''s 00000001.log' 2>&1\necho hi", "quoted for sh: \(wrapped)")
        #expect(OutputFiles(output: "a\nb").validationError != nil && OutputFiles(error: "").validationError != nil)
    }
}
