import MgpuCore

/// The ended parts one node was told it may forget, newest last, bounded: past `limit`, the oldest half goes. A report
/// the agent built before an acknowledgement may still list that part as running; such a stale "running" is no orphan.
/// Kept as a set beside the order, so that a sync reads it as it is: every sync built a set of up to 4,096 parts from
/// the list, and a busy node's list fills up.
struct AcknowledgedParts: Sendable {
    static let limit = 4096
    private(set) var order: [PartAck] = []
    private(set) var set: Set<PartAck> = []

    mutating func append(contentsOf acks: [PartAck]) {
        order.append(contentsOf: acks)
        set.formUnion(acks)
        if order.count > Self.limit {
            order.removeFirst(Self.limit / 2)
            set = Set(order)   // once per 2,048 acknowledgements: a part acknowledged twice stays while it is in the rest
        }
    }
}
