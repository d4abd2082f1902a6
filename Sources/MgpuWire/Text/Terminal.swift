/// Text from other people (job names and commands, reasons, GPU names a node reports) made safe to print on a
/// terminal: control characters (escape sequences, carriage returns, bells, newlines), C1 controls and the Unicode
/// bidirectional overrides are shown escaped (`\x1b`, `\u{202E}`) instead of acting on the reader's terminal.
public enum Terminal {
    public static func safe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else { out.unicodeScalars.append(scalar); continue }
            let hex = String(scalar.value, radix: 16)
            out += scalar.value < 0x100 ? "\\x" + (hex.count < 2 ? "0" + hex : hex) : "\\u{\(hex.uppercased())}"
        }
        return out
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool { scalar.isControlOrBidiOverride }
}
