/// Wakes a waiting loop early: `signal()` from anywhere; `wait(seconds:)` returns at the first signal or the timeout.
actor WakeSignal {
    private var pending = false
    private var waiter: (token: Int, continuation: CheckedContinuation<Void, Never>)?
    private var next = 0

    func signal() {
        if let w = waiter {
            waiter = nil
            w.continuation.resume()
        } else {
            pending = true
        }
    }

    func wait(seconds: Double) async {
        if pending {
            pending = false
            return
        }
        next += 1
        let token = next
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            waiter = (token, c)
            Task {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                self.expire(token)
            }
        }
    }

    private func expire(_ token: Int) {
        guard let w = waiter, w.token == token else { return }
        waiter = nil
        w.continuation.resume()
    }
}
