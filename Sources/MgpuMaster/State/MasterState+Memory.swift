import CMgpuSpawn
import Foundation

/// Gives the system back the heap memory a burst freed. glibc keeps it: after a 10,000-job submission and listings,
/// about 70 MB of a master's resident memory was free heap that nothing used, which malloc_trim(0) returns (it walks
/// the heap: run from the liveness tick once a burst is over).
struct HeapTrimmer {
    /// Jobs applied or listed since the last trim, and at the last tick.
    var churn = 0
    var churnAtLastTick = 0
    var last = -Double.infinity
    /// The first tick with churn since the last trim.
    var busySince: Double?

    /// On the first quiet tick after a burst (no churn since the tick before), or every 10 s while churn goes on;
    /// never within 2 s of the last trim.
    mutating func tick(now: Double) -> Bool {
        let quiet = churn == churnAtLastTick
        defer { churnAtLastTick = churn }
        if !quiet && busySince == nil { busySince = now }
        guard churn >= 500, now - last >= 2, quiet || now - (busySince ?? now) >= 10 else { return false }
        churn = 0
        last = now
        busySince = nil
        return mgpu_trim_heap() != 0
    }
}

extension MasterState {
    func trimHeap(now: Double) {
        let start = DispatchTime.now().uptimeNanoseconds
        guard heap.tick(now: now) else { return }
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        logger.debug("heap trimmed", metadata: ["ms": "\(String(format: "%.1f", ms))"])
    }
}
