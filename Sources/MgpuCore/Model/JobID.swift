/// A job's identifier: eight upper-case hexadecimal digits, e.g. `F68FAFEC`; a task of an array job adds its index,
/// `F68FAFEC_7`.
public struct JobID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// The largest task index of an array job.
    public static let maxArrayIndex = 9_999_999

    /// Accepts upper- or lower-case hex, with `_N` for a task (N decimal, no leading zeros); anything else (slashes,
    /// dots, wrong length) is nil.
    public init?(_ text: String) {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 8, utf8[..<8].allSatisfy({ $0.isHexDigit }) else { return nil }
        if utf8.count > 8 {
            let digits = utf8[9...]
            guard utf8[8] == UInt8(ascii: "_"), (1...7).contains(digits.count), digits.allSatisfy({ (0x30...0x39).contains($0) }),
                  digits.count == 1 || digits.first != UInt8(ascii: "0") else { return nil }
        }
        self.rawValue = text.uppercased()
    }

    public init(number: UInt32) {
        let hex = String(number, radix: 16, uppercase: true)
        self.rawValue = String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Task `index` of the array job `parent`.
    public init(parent: JobID, index: Int) {
        precondition((0...Self.maxArrayIndex).contains(index) && parent.arrayIndex == nil)
        self.rawValue = parent.rawValue + "_" + String(index)
    }

    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> JobID {
        JobID(number: UInt32.random(in: 0...UInt32.max, using: &generator))
    }

    /// For a task: its array job's id.
    public var arrayParent: JobID? { rawValue.utf8.count > 8 ? JobID(String(rawValue.prefix(8))) : nil }
    /// For a task: its index in the array.
    public var arrayIndex: Int? { rawValue.utf8.count > 8 ? Int(rawValue.dropFirst(9)) : nil }
    /// The eight hex digits as a number.
    public var number: UInt32 { UInt32(rawValue.prefix(8), radix: 16) ?? 0 }

    /// The order of `<` as one number: the eight hex digits, then a task's index (a job that is no task first).
    /// Sorting thousands of ids by it is several times faster than by `<`.
    public var orderKey: UInt64 { UInt64(number) << 32 | UInt64(arrayIndex.map { $0 + 1 } ?? 0) }

    public var description: String { rawValue }
    /// By the hex digits, then a task's index as a number (`_9` before `_10`).
    /// (Compared as bytes: an id is ASCII, at least eight of them, checked when made. Counting off eight characters
    /// of each was most of sorting the running jobs, which every scheduling pass does.)
    public static func < (a: JobID, b: JobID) -> Bool {
        var order = 0
        var (x, y) = (a.rawValue, b.rawValue)
        x.withUTF8 { p in
            y.withUTF8 { q in
                for i in 0..<min(8, p.count, q.count) where p[i] != q[i] {
                    order = p[i] < q[i] ? -1 : 1
                    return
                }
            }
        }
        if order != 0 { return order < 0 }
        return (a.arrayIndex ?? -1) < (b.arrayIndex ?? -1)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = JobID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "job id must be 8 hex digits (a task: ID_N), got \(text.debugDescription)"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

extension UInt8 {
    var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
