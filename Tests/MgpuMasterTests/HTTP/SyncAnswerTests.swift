import Foundation
@testable import MgpuMaster
import MgpuWire
import Testing

/// The answer to a sync that brings the agent nothing is sent as bytes encoded once: they must be what encoding an
/// empty answer gives, and read back as one.
@Suite struct SyncAnswerTests {
    @Test func thePreparedEmptyAnswerIsTheEncodedEmptyResponse() throws {
        let prepared = APIRouter.emptySyncBody.getBytes(at: 0, length: APIRouter.emptySyncBody.readableBytes) ?? []
        #expect(!prepared.isEmpty)
        #expect(prepared == Array(try APIRouter.encoder.encode(SyncResponse())))
        let decoded = try JSONDecoder().decode(SyncResponse.self, from: Data(prepared))
        #expect(decoded.isEmpty && !decoded.reregister)
    }
}
