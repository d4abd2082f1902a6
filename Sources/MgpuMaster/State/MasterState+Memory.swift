import CMgpuSpawn
import Foundation

/// Gives the system back the heap memory a burst freed. glibc keeps it: after a 10,000-job submission and listings,
/// about 70 MB of a master's resident memory was free heap that nothing used, which malloc_trim(0) returns (it walks
/// the heap: run after enough churn, at most every 2 s, from the liveness tick).
struct HeapTrimmer {
    /// Jobs applied or listed since the last trim.
    var churn = 0
    var last = -Double.infinity

    mutating func tick(now: Double) -> Bool {
        guard churn >= 500, now - last >= 2 else { return false }
        churn = 0
        last = now
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
