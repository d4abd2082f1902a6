import Foundation
import MgpuCore
import Testing

/// NodeTelemetry's two JSON forms: GPUs as objects (`gpus`: the API, the dashboard, agents of protocol 1-2) and as
/// rows (`gpuRows`: an agent's sync from protocol 3 on). Both read back to the same sample.
@Suite struct TelemetryWireTests {
    static let compact: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.userInfo[NodeTelemetry.compactGPUs] = true
        encoder.outputFormatting = .sortedKeys
        return encoder
    }()

    /// Samples covering each reading present and absent, processes with and without a job, health findings.
    static func samples() -> [NodeTelemetry] {
        var full = GPUTelemetry(index: 3, utilization: 99.5, memoryUsedMB: 5235, memoryTotalMB: 81559, temperatureC: 61,
                                powerW: 700.25, processes: [GPUProcess(pid: 41, user: "nobody", memoryMB: 5200, jobId: JobID("0000001A")!),
                                                            GPUProcess(pid: 42, user: "ann", memoryMB: 35)],
                                inUseOutside: true)
        full.unhealthy = "XID 79: the GPU has fallen off the bus"
        var sickOnly = GPUTelemetry(index: 1)
        sickOnly.unhealthy = "Remapped Rows: Pending"
        let bare = GPUTelemetry(index: 0)
        let busy = GPUTelemetry(index: 2, utilization: 0, memoryUsedMB: 0, processes: [GPUProcess(pid: 9, user: "bob", memoryMB: 1)])
        var node = NodeTelemetry(time: 1_764_000_000.125, cpuPercent: 12.5, load: [1, 0.5, 0.25], memoryUsedMB: 30000,
                                 memoryTotalMB: 64000, gpus: [bare, sickOnly, busy, full], avoidForeign: false)
        node.healthCheck = "ib0 down"
        return [node, NodeTelemetry(time: 0), NodeTelemetry(time: 2, gpus: [bare, bare], avoidForeign: true)]
    }

    @Test func rowsAndObjectsReadBackAsTheSameSample() throws {
        for sample in Self.samples() {
            let rows = try Self.compact.encode(sample)
            let objects = try JSONEncoder().encode(sample)
            #expect(try JSONDecoder().decode(NodeTelemetry.self, from: rows) == sample)
            #expect(try JSONDecoder().decode(NodeTelemetry.self, from: objects) == sample)
            let text = String(decoding: rows, as: UTF8.self)
            #expect(text.contains("\"gpuRows\"") && !text.contains("\"gpus\""), "\(text)")
            #expect(rows.count < objects.count || sample.gpus.isEmpty)
        }
    }

    /// The rows as they go on the wire: readings in a fixed order, null where nvidia-smi gave none, the processes and
    /// the health finding left off when there are none.
    @Test func rowsAreWrittenInTheirDocumentedOrder() throws {
        let sample = Self.samples()[0]
        let text = String(decoding: try Self.compact.encode(sample), as: UTF8.self)
        #expect(text == #"{"avoidForeign":false,"cpuPercent":12.5,"gpuRows":[[0,null,null,null,null,null,false],[1,null,null,null,null,null,false,[],"Remapped Rows: Pending"],[2,0,0,null,null,null,false,[[9,"bob",1]]],[3,99.5,5235,81559,61,700.25,true,[[41,"nobody",5200,"0000001A"],[42,"ann",35]],"XID 79: the GPU has fallen off the bus"]],"healthCheck":"ib0 down","load":[1,0.5,0.25],"memoryTotalMB":64000,"memoryUsedMB":30000,"time":1764000000.125}"#)
        // The API's form is unchanged: objects.
        let api = String(decoding: try JSONEncoder().encode(sample), as: UTF8.self)
        #expect(api.contains(#""gpus":[{"#) && !api.contains("gpuRows"))
    }

    /// A sample as an agent of protocol 2 sends it (mgpu 0.2.0's field set, objects) is read.
    @Test func aProtocolTwoSampleIsRead() throws {
        let json = #"{"time":5,"cpuPercent":1,"load":[0,0,0],"memoryUsedMB":1,"memoryTotalMB":2,"avoidForeign":true,"gpus":[{"index":0,"utilization":50,"memoryUsedMB":1000,"memoryTotalMB":24576,"temperatureC":50,"powerW":200,"processes":[{"pid":3,"user":"ann","memoryMB":100,"jobId":"0000abcd"}],"inUseOutside":false}]}"#
        let sample = try JSONDecoder().decode(NodeTelemetry.self, from: Data(json.utf8))
        #expect(sample.gpus.count == 1 && sample.gpus[0].utilization == 50 && sample.gpus[0].powerW == 200)
        #expect(sample.gpus[0].processes == [GPUProcess(pid: 3, user: "ann", memoryMB: 100, jobId: JobID("0000ABCD")!)])
    }

    /// Both forms in one sample are refused: which one counts would be a guess.
    @Test func bothFormsAtOnceAreRefused() throws {
        let json = #"{"time":1,"avoidForeign":true,"gpus":[],"gpuRows":[[0,null,null,null,null,null,false]]}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(NodeTelemetry.self, from: Data(json.utf8)) }
    }

    /// What the master keeps of a sample: at most 256 processes per GPU, user names of at most 64 characters without
    /// control characters; a sample within those bounds is kept as it is.
    @Test func sanitizingBoundsProcessesAndUserNames() throws {
        let many = (0..<1000).map { GPUProcess(pid: $0, user: "u\($0)", memoryMB: 1) }
        let long = GPUProcess(pid: 1, user: String(repeating: "x", count: 500), memoryMB: 1)
        let noisy = GPUProcess(pid: 2, user: "eve\u{1b}]0;pwned\u{07}", memoryMB: 1)
        let sample = NodeTelemetry(time: 1, gpus: [GPUTelemetry(index: 0, processes: many),
                                                   GPUTelemetry(index: 1, processes: [long, noisy])])
        let kept = sample.sanitized()
        #expect(kept.gpus[0].processes.count == NodeTelemetry.maxProcessesPerGPU)
        #expect(kept.gpus[0].processes.map(\.pid) == Array(0..<NodeTelemetry.maxProcessesPerGPU), "the first ones, in order")
        #expect(kept.gpus[1].processes[0].user == String(repeating: "x", count: NodeTelemetry.maxUserLength))
        #expect(kept.gpus[1].processes[1].user == "eve ]0;pwned ")
        for ordinary in Self.samples() { #expect(ordinary.sanitized() == ordinary) }
    }

    /// A row that is too short, or holds a reading of the wrong kind, is refused, not read as a GPU with no readings.
    @Test func aMalformedRowIsRefused() throws {
        for row in ["[]", "[0]", "[0,1,2,3,4,5]", #"["0",1,2,3,4,5,false]"#, #"[0,"hot",2,3,4,5,false]"#, "[0,1,2,3,4,5,false,[[1]]]",
                    "{}", "[0,1,2,3,4,5,false,[],7]"] {
            let json = #"{"time":1,"avoidForeign":true,"gpuRows":[\#(row)]}"#
            #expect(throws: DecodingError.self, "\(row)") { try JSONDecoder().decode(NodeTelemetry.self, from: Data(json.utf8)) }
        }
    }
}
