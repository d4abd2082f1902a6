import MgpuWire
import Testing

/// WaitList's timing: a wait ends at its timeout when nobody wakes it, and at once after `close()` (shutdown).
/// (That a wake sent right after an actor's check reaches its waiter, `wait` being `nonisolated(nonsending)`, I could
/// not make an in-process test show: the lost wake needs another thread to take the actor in the instant of the hop.
/// Real drains showed it: see the commit.)
@Suite struct WaitListTests {
    @Test func aWaitEndsAtItsTimeoutOrAtCloseAtOnce() async {
        let list = WaitList<String>()
        let start = ContinuousClock.now
        await list.wait("nobody wakes this", seconds: 0.05)
        #expect(ContinuousClock.now - start >= .milliseconds(45))
        list.close()
        let closed = ContinuousClock.now
        await list.wait("after close", seconds: 5)
        #expect(ContinuousClock.now - closed < .seconds(1))
    }

    @Test func aWakeEndsTheWaitAndASignalIsKeptForTheNextWait() async {
        let list = WaitList<String>()
        list.signal("ended")   // nobody waits yet: kept
        let start = ContinuousClock.now
        await list.wait("ended", seconds: 5)
        #expect(ContinuousClock.now - start < .seconds(1))
        list.wake("nobody")    // a wake is not kept
        let again = ContinuousClock.now
        await list.wait("nobody", seconds: 0.05)
        #expect(ContinuousClock.now - again >= .milliseconds(45))
    }
}
