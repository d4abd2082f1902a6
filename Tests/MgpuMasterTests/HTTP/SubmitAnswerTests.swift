import Foundation
@testable import MgpuMaster
import MgpuCore
import MgpuWire
import Testing

/// `POST /v1/jobs` answers with bytes made without a JSONEncoder (SubmitResponse.json).
@Suite struct SubmitAnswerTests {
    /// Byte for byte what the API's encoder writes, for jobs and array tasks, one or many; and it decodes back.
    @Test func theAnswerIsWhatTheEncoderWrites() throws {
        var rng = SeededRandom(seed: 17)
        for count in [1, 2, 7, 1000] {
            let ids = (0..<count).map { i -> JobID in
                let id = JobID.random(using: &rng)
                return i % 3 == 2 ? JobID(parent: id, index: Int.random(in: 0...JobID.maxArrayIndex, using: &rng)) : id
            }
            let answer = SubmitResponse(ids: ids)
            #expect(Data(answer.json) == (try APIRouter.encoder.encode(answer)))
            #expect(try JSONDecoder().decode(SubmitResponse.self, from: Data(answer.json)).ids == ids)
        }
    }
}
