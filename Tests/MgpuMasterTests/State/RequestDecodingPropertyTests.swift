import Foundation
import GRDB
import Logging
@testable import MgpuMaster
import MgpuCore
import MgpuWire
import PropertyBased
import Testing

/// Property-based tests of what the master does with a request body, in-process: a valid request with one to four
/// of its fields replaced by hostile values (wrong types, nulls, negatives, 10^9, `..`, `/`, NUL bytes, 300 kB
/// strings) is decoded as the router decodes it, checked as the router checks it, and given to the state. Whatever
/// comes in: no crash, an accepted job keeps every rule, and a refused request changes nothing, in memory or in the
/// SQLite file.
@Suite(.serialized) struct RequestDecodingPropertyTests {
    /// Replacement values, as JSON fragments.
    static let hostile: [String] = [
        "null", "-1", "0", "1", "1000000000", "9223372036854775807", "3.5", "-0.5", "1e300", "true", "\"\"", "\"x\"",
        "\"../../etc/passwd\"", "\"/\"", "\"a/b\"", "\"a\\u0000b\"", "\"\(String(repeating: "x", count: 300_000))\"",
        "[]", "[-1]", "[0,0]", "[\"nope\"]", "[\"n1\",\"n1\"]", "{}", "{\"A=B\":\"1\"}", "{\"\":\"1\"}", "{\"A\":\"\\u0000\"}",
        "[{\"nodeId\":\"n1\",\"gpus\":[0,0]}]", "[{\"nodeId\":\"../n1\",\"gpus\":[0]}]", "{\"rows\":0,\"columns\":5000}",
    ]

    /// Paths into a submission whose values get replaced.
    static let submitFields: [[String]] = [
        ["jobs"], ["commands"], ["jobs", "0"], ["jobs", "0", "command"], ["jobs", "0", "workdir"], ["jobs", "0", "name"],
        ["jobs", "0", "environment"], ["jobs", "0", "user"], ["jobs", "0", "request"], ["jobs", "0", "request", "gpusPerNode"],
        ["jobs", "0", "request", "nodes"], ["jobs", "0", "request", "nodelist"], ["jobs", "0", "request", "pinned"],
        ["jobs", "0", "request", "gpuIds"], ["jobs", "0", "request", "excludedNodes"], ["jobs", "0", "request", "distributed"],
        ["jobs", "0", "killGraceSeconds"], ["jobs", "0", "timeLimit"], ["jobs", "0", "interactive"], ["jobs", "0", "tty"],
        ["jobs", "0", "requeue"],
    ]

    static let validSubmit = """
    {"jobs":[{"name":"train","user":"u","command":"python train.py","workdir":"/tmp","environment":{"A":"1"},
    "request":{"gpusPerNode":1,"nodes":1,"distributed":false},"killGraceSeconds":5,"timeLimit":60,
    "interactive":true,"tty":{"rows":24,"columns":80},"requeue":false}],"commands":null}
    """

    static let registerFields: [[String]] = [
        ["nodeId"], ["incarnation"], ["gpus"], ["gpus", "0"], ["gpus", "0", "index"], ["gpus", "0", "memoryMB"], ["cpuSlots"],
        ["advertiseAddress"],
    ]
    static let validRegister = """
    {"nodeId":"n2","incarnation":"i1","gpus":[{"index":0,"uuid":"G0","name":"GPU","memoryMB":1024,"simulated":true}],
    "cpuSlots":4,"advertiseAddress":"10.0.0.2"}
    """

    /// `json` with the value at each path replaced (a missing key on the way becomes null; a missing index is skipped).
    static func mutate(_ json: String, _ edits: [(path: [String], value: String)]) -> Data {
        var object = try! JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])
        for edit in edits {
            let value = try! JSONSerialization.jsonObject(with: Data(edit.value.utf8), options: [.fragmentsAllowed])
            object = replace(object, edit.path[...], with: value)
        }
        return try! JSONSerialization.data(withJSONObject: object, options: [.fragmentsAllowed])
    }

    static func replace(_ node: Any, _ path: ArraySlice<String>, with value: Any) -> Any {
        guard let key = path.first else { return value }
        if var dict = node as? [String: Any] {
            dict[key] = replace(dict[key] ?? NSNull(), path.dropFirst(), with: value)
            return dict
        }
        if var array = node as? [Any], let i = Int(key), array.indices.contains(i) {
            array[i] = replace(array[i], path.dropFirst(), with: value)
            return array
        }
        return node
    }

    /// A master state over a real SQLite file, with one node (4 GPUs) to admit jobs against.
    static func makeState() async throws -> (MasterState, SQLiteStore) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mgpu-prop-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir + "/mgpu.sqlite")
        let state = try MasterState(config: MasterConfig(stateDir: dir), store: store, logger: Logger(label: "test"))
        _ = try await state.register(RegisterRequest(nodeId: "n1", incarnation: "i0",
            gpus: (0..<4).map { GPU(index: $0, uuid: "G\($0)", name: "GPU", memoryMB: 1024, simulated: true) },
            cpuSlots: 4, advertiseAddress: nil), peerAddress: "127.0.0.1")
        return (state, store)
    }

    /// What a refused request must leave as it was: every job (id and state) and node, in memory and on disk.
    static func snapshot(_ state: MasterState, _ store: SQLiteStore) async throws -> [String] {
        let queue = await state.queue(finishedWithin: .infinity)
        let rows = try await store.queue.read { db in
            try String.fetchAll(db, sql: "SELECT id || ' ' || state FROM job ORDER BY id")
                + String.fetchAll(db, sql: "SELECT id || ' ' || length(data) FROM node ORDER BY id")
        }
        return queue.jobs.map { "\($0.id) \($0.state.rawValue)" }.sorted() + queue.nodes.map { "\($0.id) \($0.gpus.count) \($0.cpuSlots)" } + rows
    }

    static let edits = zip(Gen.int(in: 0...1000), Gen.int(in: 0...(hostile.count - 1))).array(of: 1...4)

    @Test func submissionsAreAcceptedWholeAndValidOrRefusedWithoutATrace() async throws {
        let (state, store) = try await Self.makeState()
        nonisolated(unsafe) var accepted = 0, refused = 0  // counted by the one check closure, run serially
        await propertyCheck(count: 400, input: Self.edits) { picks in
            let body = Self.mutate(Self.validSubmit, picks.map { (Self.submitFields[$0.0 % Self.submitFields.count], Self.hostile[$0.1]) })
            let before = try! await Self.snapshot(state, store)
            do {
                // As the router does it.
                var request = try JSONDecoder().decode(SubmitRequest.self, from: body)
                for i in request.jobs.indices { request.jobs[i].user = "u" }
                let ids = try await state.submit(request)
                accepted += 1
                for id in ids {
                    let job = await state.jobInfo(id)!
                    #expect(job.request.gpusPerNode >= 0 && job.request.nodes >= 1 && job.workdir.hasPrefix("/"))
                    #expect(!job.command.utf8.contains(0) && job.command.contains { !$0.isWhitespace })
                    #expect(job.request.excludedNodes == nil)
                }
            } catch {
                refused += 1
                let after = try! await Self.snapshot(state, store)
                #expect(after == before, "a refused request (\(error)) changed the state")
            }
        }
        #expect(accepted > 0 && refused > 0, "both outcomes were exercised: \(accepted) accepted, \(refused) refused")
    }

    @Test func registrationsAreValidOrRefusedWithoutATrace() async throws {
        let (state, store) = try await Self.makeState()
        nonisolated(unsafe) var accepted = 0, refused = 0
        await propertyCheck(count: 300, input: Self.edits) { picks in
            let body = Self.mutate(Self.validRegister, picks.map { (Self.registerFields[$0.0 % Self.registerFields.count], Self.hostile[$0.1]) })
            let before = try! await Self.snapshot(state, store)
            do {
                let request = try JSONDecoder().decode(RegisterRequest.self, from: body)
                _ = try await state.register(request, peerAddress: "127.0.0.1")
                accepted += 1
                let node = await state.queue(finishedWithin: 0).nodes.first { $0.id == request.nodeId }
                #expect(node != nil && SafeName.isValid(request.nodeId) && (0...100_000).contains(node!.cpuSlots))
                #expect(node!.gpus.allSatisfy { (0...1023).contains($0.index) })
            } catch {
                refused += 1
                let after = try! await Self.snapshot(state, store)
                #expect(after == before, "a refused registration (\(error)) changed the state")
            }
        }
        #expect(accepted > 0 && refused > 0, "both outcomes were exercised: \(accepted) accepted, \(refused) refused")
    }

    @Test func mutationReplacesNestedValues() {
        let data = Self.mutate(#"{"a":{"b":[1,2]},"c":3}"#, [(["a", "b", "1"], "\"x\""), (["c"], "null"), (["missing", "deep"], "1")])
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""b":[1,"x"]"#) && text.contains(#""c":null"#) && text.contains(#""missing":null"#))
    }
}
