public import MgpuCore

/// Shape checks of what agents send, done before the master looks at its state: a message that fails one is
/// refused with 400 whoever sent it, and changes nothing.
/// Node ids and user names: 1-64 ASCII letters, digits, '.', '-' or '_', and not "." or "..", because they name
/// folders (output, tokens) and appear in URLs.
public enum SafeName {
    public static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id != "." && id != ".." && id.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
        }
    }

    static func check(_ id: String) -> RequestError? {
        isValid(id) ? nil : RequestError("node id must be 1-64 letters, digits, '.', '-' or '_', got \(id.prefix(80).debugDescription)")
    }
}

extension RegisterRequest {
    public func validationError() -> RequestError? {
        if let error = SafeName.check(nodeId) { return error }
        if incarnation.isEmpty || incarnation.utf8.count > 128 { return RequestError("incarnation must be 1-128 bytes") }
        if cpuSlots < 0 || cpuSlots > 100_000 || gpus.count > 1024 {
            return RequestError("implausible node: \(gpus.count) GPUs, \(cpuSlots) CPU slots")
        }
        if Set(gpus.map(\.index)).count != gpus.count || !gpus.allSatisfy({ (0...1023).contains($0.index) }) {
            return RequestError("GPU indices must be distinct and in 0...1023")
        }
        if let address = advertiseAddress, address.isEmpty || address.utf8.count > 255 {
            return RequestError("advertiseAddress must be 1-255 bytes")
        }
        return nil
    }
}

extension SyncRequest {
    public func validationError() -> RequestError? {
        if let error = SafeName.check(nodeId) { return error }
        guard wait >= 0, wait <= 120 else { return RequestError("wait must be 0-120 s") }
        if let port = freePort, !(1...65535).contains(port) { return RequestError("freePort must be 1-65535") }
        if running.contains(where: { $0.rank < 0 || $0.gpus.contains { $0 < 0 } })
            || finished.contains(where: { $0.rank < 0 }) {
            return RequestError("ranks and GPU indices must be 0 or more")
        }
        return nil
    }
}

extension DeregisterRequest {
    public func validationError() -> RequestError? {
        if let error = SafeName.check(nodeId) { return error }
        if reason.utf8.count > 4096 { return RequestError("reason must be at most 4096 bytes") }
        return nil
    }
}
