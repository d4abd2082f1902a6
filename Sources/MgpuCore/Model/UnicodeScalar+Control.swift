extension Unicode.Scalar {
    /// C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates: what can move a terminal's
    /// cursor or reorder what a terminal or page shows. `Terminal.safe` escapes these; agents' free texts lose them.
    public var isControlOrBidiOverride: Bool {
        let v = value
        return v < 0x20 || (0x7F...0x9F).contains(v) || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
    }

    /// The bidirectional marks (ALM, LRM, RLM): invisible, and they too change how neighbouring text is ordered.
    public var isBidiMark: Bool { value == 0x061C || value == 0x200E || value == 0x200F }
}
