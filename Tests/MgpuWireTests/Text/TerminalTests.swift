import MgpuWire
import Testing

@Suite struct TerminalTests {
    @Test func controlCharactersAreShownNotObeyed() {
        #expect(Terminal.safe("train.py") == "train.py")
        #expect(Terminal.safe("a\u{1B}[2Jb") == "a\\x1b[2Jb")
        #expect(Terminal.safe("x\ry\nz\t\u{07}") == "x\\x0dy\\x0az\\x09\\x07")
        #expect(Terminal.safe("\u{9B}31m\u{7F}") == "\\x9b31m\\x7f")
        #expect(Terminal.safe("user\u{202E}gnp.exe") == "user\\u{202E}gnp.exe")
        #expect(Terminal.safe("ünïcode ✓ 日本") == "ünïcode ✓ 日本")
        let once = Terminal.safe("\u{1B}]0;title\u{07}")
        #expect(Terminal.safe(once) == once, "escaping is idempotent")
    }

    @Test func tablesEscapeEveryCell() {
        let table = Table(header: ["NAME"], rows: [["\u{1B}[31mred"], ["ok"]]).render()
        #expect(!table.unicodeScalars.contains { $0.value == 0x1B })
        #expect(table.contains("\\x1b[31mred"))
    }
}
