/// Fewest active connections first. Ties go round robin, so that a quiet
/// service still spreads its connections (the original always picked the
/// last of the tied backends).
public struct LeastConnections: Sendable, Equatable {
    /// Where the rotation among tied backends starts next time.
    public private(set) var tieBreaker = 0

    public init() {}

    public mutating func choose<B: BalancedBackend>(_ backends: [B], into order: inout [Int]) {
        peek(backends, into: &order)
        // The next tie starts after the one chosen, so tied backends take
        // turns whatever lies between them.
        if let first = order.first { tieBreaker = (first + 1) % backends.count }
    }

    public func peek<B: BalancedBackend>(_ backends: [B], into order: inout [Int]) {
        order.removeAll(keepingCapacity: true)
        let n = backends.count
        guard n > 0 else { return }
        appendUp(backends, from: tieBreaker % n, skip: -1, into: &order)
        // Stable insertion sort by load keeps the rotation among ties; the
        // lists are short and this allocates nothing.
        var i = 1
        while i < order.count {
            let item = order[i]
            let load = backends[item].active
            var j = i - 1
            while j >= 0 && backends[order[j]].active > load {
                order[j + 1] = order[j]
                j -= 1
            }
            order[j + 1] = item
            i += 1
        }
    }
}
