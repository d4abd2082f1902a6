/// Slurm's time formats: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.
public enum TimeLimit {
    /// Seconds, or nil for text that is none of the formats. "0", "UNLIMITED" and "INFINITE" mean no limit (nil in `.some`).
    public static func parse(_ text: String) -> Double?? {
        let t = text.trimmingSpaces
        if t == "0" || t.uppercased() == "UNLIMITED" || t.uppercased() == "INFINITE" { return .some(nil) }
        var days = 0
        var rest = Substring(t)
        if let dash = t.firstIndex(of: "-") {
            guard let d = Int(t[..<dash]), d >= 0 else { return nil }
            days = d
            rest = t[t.index(after: dash)...]
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        let p = parts.map { $0! }
        let seconds: Int
        if t.contains("-") {
            switch p.count {
            case 1: seconds = p[0] * 3600
            case 2: seconds = p[0] * 3600 + p[1] * 60
            case 3: seconds = p[0] * 3600 + p[1] * 60 + p[2]
            default: return nil
            }
        } else {
            switch p.count {
            case 1: seconds = p[0] * 60
            case 2: seconds = p[0] * 60 + p[1]
            case 3: seconds = p[0] * 3600 + p[1] * 60 + p[2]
            default: return nil
            }
        }
        let total = Double(days * 86400 + seconds)
        return total > 0 ? .some(total) : .some(nil)
    }
}
