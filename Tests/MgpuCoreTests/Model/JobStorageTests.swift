import Foundation
@testable import MgpuCore
import Testing

/// A Job is one reference to its fields, copied on write: it must still behave as a value, and encode as before.
@Suite struct JobStorageTests {
    /// Every field set, so that each one's key and value are in the JSON.
    static func everyField() throws -> Job {
        var request = ResourceRequest(gpusPerNode: 2, nodes: 1)
        request.excludedNodes = ["n9"]
        request.gpuType = "A100"
        var job = Job(id: JobID("00C0FFEE")!, seq: 42, name: "train", user: "alice", command: "python train.py",
                      workdir: "/home/alice", environment: ["PATH": "/usr/bin", "A": "1"], request: request,
                      killGraceSeconds: 5, submitTime: 100)
        try job.transition(to: .running, at: 110)
        job.parts = [JobPart(rank: 0, nodeId: "n1", gpus: [0, 1], exit: ExitStatus(code: 1), deliveredTo: "inc-1")]
        try job.transition(to: .failed, at: 120)
        job.exit = ExitStatus(code: 1)
        job.reason = "n1: exit code 1"
        job.cancelRequested = true
        job.terminating = true
        job.failedRank = 0
        job.rendezvousPort = 29500
        job.timeLimit = 3600
        job.interactive = true
        job.tty = TerminalSize(rows: 24, columns: 80)
        job.requeue = true
        job.requeues = 2
        job.nice = 100
        job.dependencies = [Dependency(kind: .afterok, jobs: [JobID("0000BEEF")!])]
        job.array = JobArray(TaskIndices([.init(first: 0, last: 9, step: 3)]), maxRunning: 2)
        job.arrayTask = ArrayTaskInfo(JobArray(TaskIndices([.init(first: 0, last: 3)]), maxRunning: nil))
        job.preemptible = true
        job.preemptedBy = JobID("0000FACE")!
        job.history = [JobRun(state: "PREEMPTED", start: 1, end: 2, placement: "n2:gpu0", reason: "preempted")]
        var usage = JobUsage()
        usage.gpuSeconds = 20
        usage.peakMemoryMB = 512
        job.usage = usage
        job.notify = "http://127.0.0.1:9/hook"
        job.outputFiles = OutputFiles(output: "out.txt", error: nil, keepLogs: true)
        return job
    }

    /// The JSON of a job with every field set, byte for byte as Job wrote it when its fields were inline: the store's
    /// rows and the API's answers are unchanged. Red when a field is left out of, or renamed in, the stored form.
    @Test func encodesAsTheInlineJobDid() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(try Self.everyField()), as: UTF8.self)
        #expect(json == Self.golden)
        let back = try JSONDecoder().decode(Job.self, from: Data(json.utf8))
        #expect(String(decoding: try encoder.encode(back), as: UTF8.self) == Self.golden)
    }

    /// A copy is independent of the job it was copied from, whichever way either is changed afterwards.
    @Test func aCopyIsAValue() throws {
        let original = try Self.everyField()
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let before = String(decoding: try encoder.encode(original), as: UTF8.self)
        var copy = original
        copy.state = .running
        copy.parts.append(JobPart(rank: 1, nodeId: "n2", gpus: [3]))
        copy.parts[0].exit = nil
        copy.request.excludedNodes?.append("n8")
        copy.environment["B"] = "2"
        copy.usage?.gpuSeconds += 1
        try copy.requeueAfterPreemption(excluding: ["n1"], at: 130)
        #expect(String(decoding: try encoder.encode(original), as: UTF8.self) == before)
        // And the other way: changing the original leaves a copy alone.
        var changed = original
        let kept = changed
        changed.name = "other"
        changed.partEnded(0, ExitStatus(signal: 9))
        #expect(kept.name == "train" && kept.parts[0].exit == ExitStatus(code: 1))
        #expect(String(decoding: try encoder.encode(kept), as: UTF8.self) == before)
    }

    /// A write through any one property, to a copy that shares the original's fields, leaves the original as it was.
    /// Each property's own accessor is tried on a fresh copy (after one write a copy's fields are its own).
    @Test func aWriteToAnyPropertyLeavesTheOriginal() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let original = try Self.everyField()
        let before = String(decoding: try encoder.encode(original), as: UTF8.self)
        let writes: [(String, (inout Job) -> Void)] = [
            ("id", { $0.id = JobID("0000000A")! }), ("seq", { $0.seq += 1 }), ("name", { $0.name += "x" }),
            ("user", { $0.user = "bob" }), ("command", { $0.command += " --x" }), ("workdir", { $0.workdir = "/tmp" }),
            ("environment", { $0.environment["B"] = "2" }), ("request", { $0.request.nodes = 3 }),
            ("killGraceSeconds", { $0.killGraceSeconds = 1 }), ("state", { $0.state = .pending }),
            ("submitTime", { $0.submitTime = 1 }), ("startTime", { $0.startTime = nil }), ("endTime", { $0.endTime = nil }),
            ("parts", { $0.parts[0].gpus.append(7) }), ("exit", { $0.exit?.code = 2 }), ("reason", { $0.reason = nil }),
            ("cancelRequested", { $0.cancelRequested.toggle() }), ("terminating", { $0.terminating.toggle() }),
            ("failedRank", { $0.failedRank = 3 }), ("rendezvousPort", { $0.rendezvousPort = 1 }),
            ("timeLimit", { $0.timeLimit = 1 }), ("interactive", { $0.interactive = false }), ("tty", { $0.tty?.rows = 1 }),
            ("requeue", { $0.requeue = false }), ("requeues", { $0.requeues = 9 }), ("nice", { $0.nice = -1 }),
            ("dependencies", { $0.dependencies?.removeAll() }), ("array", { $0.array?.maxRunning = 1 }),
            ("arrayTask", { $0.arrayTask?.count = 1 }), ("preemptible", { $0.preemptible = false }),
            ("preemptedBy", { $0.preemptedBy = nil }),
            ("history", { $0.history?.append(JobRun(state: "X", start: 0, end: 0, placement: "", reason: nil)) }),
            ("usage", { $0.usage?.gpuSeconds = 99 }), ("notify", { $0.notify = nil }),
            ("outputFiles", { $0.outputFiles?.keepLogs = false }),
        ]
        // One for every stored field: a field added later needs its line here.
        #expect(writes.count == Mirror(reflecting: original.storage.fields).children.count)
        for (name, write) in writes {
            var copy = original
            write(&copy)
            #expect(String(decoding: try encoder.encode(copy), as: UTF8.self) != before, "\(name): the write changed nothing")
            #expect(String(decoding: try encoder.encode(original), as: UTF8.self) == before, "\(name) changed the original")
        }
    }

    /// What the master keeps per job in its dictionary: one reference, not the fields (688 bytes inline before). And
    /// the fields themselves: the rare ones behind references (681 bytes with them inline, 464 without).
    @Test func aJobIsOneReferenceWide() {
        #expect(MemoryLayout<Job>.size == MemoryLayout<AnyObject>.size)
        #expect(MemoryLayout<Job.Fields>.size < 500)
    }

    /// A job as submitted, with none of the optional fields: none of their keys (nil is left out, not null), nor those
    /// of the fields at their default (false, empty: `Defaulted`); a row that has them (mgpu before v6 wrote them) reads
    /// as the same job.
    @Test func aNewJobLeavesOutWhatItHasNot() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let job = Job(id: JobID("00C0FFEE")!, seq: 1, name: "n", user: "u", command: "true", workdir: "/", environment: [:],
                      request: ResourceRequest(), submitTime: 5)
        let json = String(decoding: try encoder.encode(job), as: UTF8.self)
        #expect(json == Self.goldenNew)
        let back = try JSONDecoder().decode(Job.self, from: Data(json.utf8))
        #expect(back.exit == nil && back.usage == nil && back.tty == nil && back.array == nil && back.arrayTask == nil
                && back.outputFiles == nil)
        // An explicit null reads as nil too, as for a plain optional.
        let nulls = json.dropLast() + #","exit":null,"tty":null,"usage":null,"array":null,"arrayTask":null,"outputFiles":null}"#
        let fromNulls = try JSONDecoder().decode(Job.self, from: Data(nulls.utf8))
        #expect(String(decoding: try encoder.encode(fromNulls), as: UTF8.self) == Self.goldenNew)
        let before = try JSONDecoder().decode(Job.self, from: Data(Self.goldenNewBeforeV6.utf8))
        #expect(String(decoding: try encoder.encode(before), as: UTF8.self) == Self.goldenNew)
        #expect(!before.cancelRequested && !before.terminating && before.parts.isEmpty && before.environment.isEmpty)
    }

    static let goldenNewBeforeV6 = #"{"cancelRequested":false,"command":"true","environment":{},"id":"00C0FFEE","killGraceSeconds":10,"name":"n","parts":[],"request":{"distributed":false,"gpusPerNode":1,"nodes":1},"seq":1,"state":"PENDING","submitTime":5,"terminating":false,"user":"u","workdir":"\/"}"#

    static let goldenNew = #"{"command":"true","id":"00C0FFEE","killGraceSeconds":10,"name":"n","request":{"distributed":false,"gpusPerNode":1,"nodes":1},"seq":1,"state":"PENDING","submitTime":5,"user":"u","workdir":"\/"}"#

    static let golden = #"{"array":{"count":4,"max":9,"maxRunning":2,"min":0,"pending":[{"first":0,"last":9,"step":3}]},"arrayTask":{"count":4,"max":3,"min":0},"cancelRequested":true,"command":"python train.py","dependencies":[{"jobs":["0000BEEF"],"kind":"afterok"}],"endTime":120,"environment":{"A":"1","PATH":"\/usr\/bin"},"exit":{"code":1},"failedRank":0,"history":[{"end":2,"placement":"n2:gpu0","reason":"preempted","start":1,"state":"PREEMPTED"}],"id":"00C0FFEE","interactive":true,"killGraceSeconds":5,"name":"train","nice":100,"notify":"http:\/\/127.0.0.1:9\/hook","outputFiles":{"keepLogs":true,"output":"out.txt"},"parts":[{"deliveredTo":"inc-1","exit":{"code":1},"gpus":[0,1],"nodeId":"n1","rank":0}],"preemptedBy":"0000FACE","preemptible":true,"reason":"n1: exit code 1","rendezvousPort":29500,"request":{"distributed":false,"excludedNodes":["n9"],"gpuType":"A100","gpusPerNode":2,"nodes":1},"requeue":true,"requeues":2,"seq":42,"startTime":110,"state":"FAILED","submitTime":100,"terminating":true,"timeLimit":3600,"tty":{"columns":80,"rows":24},"usage":{"busyGPUSeconds":0,"energyWh":0,"gpuSeconds":20,"peakMemoryMB":512,"sampledGPUSeconds":0},"user":"alice","workdir":"\/home\/alice"}"#
}
