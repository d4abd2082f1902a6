@testable import MgpuMaster
import MgpuCore
import Testing

/// A node's acknowledged parts, as acknowledgements come (one or many a sync, some again), hold exactly what the
/// plain bounded list holds: the newest, the oldest half dropped each time it passes 4,096.
@Suite struct AcknowledgedPartsTests {
    @Test(arguments: 0..<5) func holdWhatTheBoundedListHolds(seed: Int) {
        var rng = SeededRandom(seed: UInt64(seed))
        var kept = AcknowledgedParts()
        var model: [PartAck] = []
        var next: UInt32 = 1
        for step in 0..<1200 {
            var acks: [PartAck] = []
            for _ in 0..<Int.random(in: 0...(Bool.random(using: &rng) ? 3 : 40), using: &rng) {
                if !model.isEmpty && Int.random(in: 0..<5, using: &rng) == 0 {
                    acks.append(model[Int.random(in: 0..<model.count, using: &rng)])   // reported and acknowledged again
                } else {
                    acks.append(PartAck(jobId: JobID(number: next), attempt: Int.random(in: 0...1, using: &rng)))
                    next += 1
                }
            }
            kept.append(contentsOf: acks)
            model.append(contentsOf: acks)
            var cut = false
            if model.count > 4096 { model.removeFirst(2048); cut = true }
            // Compared as a whole, reported by size (a failure would print thousands of parts otherwise).
            let sameOrder = kept.order == model
            #expect(sameOrder, "step \(step): \(kept.order.count) parts kept, the list has \(model.count)")
            if cut || step % 50 == 0 {
                let expected = Set(model), sameSet = kept.set == expected
                #expect(sameSet, "step \(step): \(kept.set.count) in the set, \(expected.count) in the list, \(kept.set.subtracting(expected).count) gone from it")
            }
        }
        #expect(next > 8192, "the list filled up and was cut more than once")
    }
}
