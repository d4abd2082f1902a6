/// A job's identifier: eight upper-case hexadecimal digits, e.g. `F68FAFEC`.
public struct JobID: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// Accepts upper- or lower-case hex; anything else (slashes, dots, wrong length) is nil.
    public init?(_ text: String) {
        guard text.utf8.count == 8, text.utf8.allSatisfy({ $0.isHexDigit }) else { return nil }
        self.rawValue = text.uppercased()
    }

    public init(number: UInt32) {
        let hex = String(number, radix: 16, uppercase: true)
        self.rawValue = String(repeating: "0", count: 8 - hex.count) + hex
    }

    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> JobID {
        JobID(number: UInt32.random(in: 0...UInt32.max, using: &generator))
    }

    public var description: String { rawValue }
    public static func < (a: JobID, b: JobID) -> Bool { a.rawValue < b.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = JobID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                debugDescription: "job id must be 8 hex digits, got \(text.debugDescription)"))
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
