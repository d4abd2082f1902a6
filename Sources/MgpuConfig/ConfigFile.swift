import Foundation
import MgpuCore
import TOMLKit

/// mgpu.toml: one TOML file with sections `[master]`, `[node]`, `[policy]` and `[client]`, each key named after its
/// command-line flag in snake_case (`--default-time` is `default_time`). Parsed by TOMLKit (toml++), then kept as plain
/// values, with the line each key is on, so that a bad key or value is reported as `mgpu.toml:12: ...`.
public struct ConfigFile: Sendable {
    /// The default place: used when it exists and no `--config` is given.
    public static let defaultPath = "/etc/mgpu/mgpu.toml"

    public let path: String
    /// The top-level tables, by section name.
    public let sections: [String: ConfigValue]
    let lines: [Substring]

    public static let knownSections = ["master", "node", "policy", "client"]

    public init(path: String) throws(ConfigError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read the config file \(path)")
        }
        try self.init(text: String(decoding: data, as: UTF8.self), path: path)
    }

    public init(text: String, path: String) throws(ConfigError) {
        self.path = path
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError("\(Self.name(path)):\(error.source.begin.line): \(error.description)")
        } catch {
            throw ConfigError("\(Self.name(path)): not TOML: \(error)")
        }
        var sections: [String: ConfigValue] = [:]
        for key in table.keys.sorted() {
            let value = ConfigValue(table[key]!)
            guard Self.knownSections.contains(key), case .table = value else {
                let hint = Self.suggestion(key, among: Self.knownSections).map { " (did you mean [\($0)]?)" } ?? ""
                throw ConfigError("\(Self.name(path)):\(Self.line(of: key, section: nil, in: lines)): unknown section \"\(key)\"\(hint); the sections are [\(Self.knownSections.joined(separator: "], ["))]")
            }
            sections[key] = value
        }
        self.sections = sections
    }

    /// The file's name, as messages show it.
    static func name(_ path: String) -> String { (path as NSString).lastPathComponent }

    /// A section's keys, checked against those it may have.
    public func section(_ name: String) -> ConfigSection {
        guard case .table(let values)? = sections[name] else { return ConfigSection(file: self, path: [name], values: [:]) }
        return ConfigSection(file: self, path: [name], values: values)
    }

    /// The line a key is on (1-based): the first `key =` after its table's header; 1 when not found.
    static func line(of key: String, section: [String]?, in lines: [Substring]) -> Int {
        var inside = section == nil
        let header = section.map { "[" + $0.joined(separator: ".") + "]" }
        for (i, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") {
                let name = line.prefix { $0 != "#" }.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "")
                if let header { inside = name == header || name.replacingOccurrences(of: "\"", with: "") == header }
                if section == nil && (name == "[\(key)]" || name.hasPrefix("[\(key).")) { return i + 1 }
                continue
            }
            if inside, line.hasPrefix(key) || line.hasPrefix("\"\(key)\""),
               line.dropFirst(line.hasPrefix("\"") ? key.count + 2 : key.count).trimmingCharacters(in: .whitespaces).hasPrefix("=") {
                return i + 1
            }
        }
        return 1
    }

    /// The known name closest to `word` (at most two edits away), for "did you mean".
    static func suggestion(_ word: String, among names: [String]) -> String? {
        let scored = names.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(1, b.count) where !b.isEmpty {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}

/// A bad config file, in one line: "mgpu.toml:12: unknown key "node_timout" in [master] (did you mean node_timeout?)".
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A TOML value as the config keeps it.
public enum ConfigValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case array([ConfigValue])
    case table([String: ConfigValue])
    /// Dates and times: no key takes one.
    case other(String)

    init(_ value: any TOMLValueConvertible) {
        switch value.type {
        case .string: self = .string(value.string ?? "")
        case .int: self = .int(value.int ?? 0)
        case .double: self = .double(value.double ?? 0)
        case .bool: self = .bool(value.bool ?? false)
        case .array:
            let array = value.array!
            self = .array((0..<array.count).map { ConfigValue(array[$0]) })
        case .table:
            let table = value.table!
            self = .table(Dictionary(uniqueKeysWithValues: table.keys.map { ($0, ConfigValue(table[$0]!)) }))
        default: self = .other(value.debugDescription)
        }
    }

    var kind: String {
        switch self {
        case .string: "a string"
        case .int: "an integer"
        case .double: "a number"
        case .bool: "true or false"
        case .array: "an array"
        case .table: "a table"
        case .other: "a date or time"
        }
    }
}

/// One table of the file (`[policy]`, `[policy.accounts.vision]`): typed reads, each failing with the file and line.
public struct ConfigSection: Sendable {
    let file: ConfigFile
    public let path: [String]
    public let values: [String: ConfigValue]

    var where_: String { "[" + path.joined(separator: ".") + "]" }

    /// The keys `keys` of `section` only (the rest are read elsewhere).
    public init(subset section: ConfigSection, keys: [String]) {
        file = section.file
        path = section.path
        values = section.values.filter { keys.contains($0.key) }
    }

    init(file: ConfigFile, path: [String], values: [String: ConfigValue]) {
        self.file = file
        self.path = path
        self.values = values
    }

    public func fail(_ key: String, _ what: String) -> ConfigError {
        ConfigError("\(ConfigFile.name(file.path)):\(ConfigFile.line(of: key, section: path, in: file.lines)): \(what)")
    }

    /// Refuses keys other than `known` (and the sub-tables in `tables`), naming the closest known key.
    public func check(known: [String], tables: [String] = []) throws(ConfigError) {
        for key in values.keys.sorted() where !known.contains(key) && !tables.contains(key) {
            let hint = ConfigFile.suggestion(key, among: known + tables).map { " (did you mean \($0)?)" } ?? ""
            throw fail(key, "unknown key \"\(key)\" in \(where_)\(hint)")
        }
    }

    public func string(_ key: String) throws(ConfigError) -> String? {
        guard let value = values[key] else { return nil }
        guard case .string(let s) = value else { throw fail(key, "\(key) in \(where_) must be a string, got \(value.kind)") }
        return s
    }

    public func int(_ key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let value = values[key] else { return nil }
        guard case .int(let n) = value else { throw fail(key, "\(key) in \(where_) must be an integer, got \(value.kind)") }
        guard range.contains(n) else { throw fail(key, "\(key) in \(where_) must be \(range.lowerBound)-\(range.upperBound), got \(n)") }
        return n
    }

    public func number(_ key: String, range: ClosedRange<Double>) throws(ConfigError) -> Double? {
        guard let value = values[key] else { return nil }
        let n: Double
        switch value {
        case .int(let i): n = Double(i)
        case .double(let d): n = d
        default: throw fail(key, "\(key) in \(where_) must be a number, got \(value.kind)")
        }
        guard range.contains(n), n.isFinite else { throw fail(key, "\(key) in \(where_) must be \(range.lowerBound)-\(range.upperBound), got \(n)") }
        return n
    }

    /// A duration as Slurm writes it ("7-00:00:00", "90"), or a number of seconds; "none" (or 0) when `allowNone`.
    public func duration(_ key: String, allowNone: Bool = false) throws(ConfigError) -> Double?? {
        guard let value = values[key] else { return nil }
        let usage = "\(key) in \(where_) takes MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS (a string), or seconds (a number)\(allowNone ? ", or \"none\"" : "")"
        switch value {
        case .int(let n) where n > 0: return .some(Double(n))
        case .double(let n) where n > 0 && n.isFinite: return .some(n)
        case .string(let text):
            let none = text.lowercased() == "none"
            guard let parsed = none ? .some(nil) : TimeLimit.parse(text), parsed != nil || allowNone else {
                throw fail(key, "\(usage); got \(String(reflecting: text))")
            }
            return .some(parsed)
        default: throw fail(key, usage)
        }
    }

    /// The sub-tables under `key` (`[policy.accounts.NAME]`), by name.
    public func tables(_ key: String) throws(ConfigError) -> [(String, ConfigSection)] {
        guard let value = values[key] else { return [] }
        guard case .table(let entries) = value else { throw fail(key, "\(key) in \(where_) must be a table of tables ([\((path + [key]).joined(separator: ".")).NAME])") }
        var result: [(String, ConfigSection)] = []
        for name in entries.keys.sorted() {
            guard case .table(let inner) = entries[name]! else {
                throw fail(name, "\(name) in [\((path + [key]).joined(separator: "."))] must be a table ([\((path + [key, name]).joined(separator: "."))])")
            }
            result.append((name, ConfigSection(file: file, path: path + [key, name], values: inner)))
        }
        return result
    }
}
