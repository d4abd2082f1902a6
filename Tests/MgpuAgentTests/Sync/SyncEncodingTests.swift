import Foundation
@testable import MgpuClient
import MgpuCore
import MgpuWire
import Testing

/// What an agent's sync puts on the wire: protocol 3, its telemetry's GPUs as rows; every other message (and so
/// everything a master answers or lists) keeps GPUs as objects.
@Suite struct SyncEncodingTests {
    @Test func aSyncSendsItsGPUsAsRows() throws {
        var request = SyncRequest(nodeId: "n1", incarnation: "i", running: [], finished: [], wait: 25)
        request.telemetry = NodeTelemetry(time: 1, gpus: [GPUTelemetry(index: 0, utilization: 50, memoryUsedMB: 1, memoryTotalMB: 2)])
        let sync = String(decoding: try MasterClient.syncEncoder.encode(request), as: UTF8.self)
        #expect(sync.contains(#""gpuRows":[[0,50,1,2,null,null,false]]"#) && !sync.contains(#""gpus""#), "\(sync)")
        #expect(sync.contains(#""protocolVersion":3"#), "\(sync)")
        let other = String(decoding: try MasterClient.encoder.encode(request.telemetry), as: UTF8.self)
        #expect(other.contains(#""gpus":[{"#) && !other.contains("gpuRows"), "\(other)")
    }
}
