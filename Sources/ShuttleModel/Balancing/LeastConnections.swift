/// Fewest active connections first. Ties go round robin, so that a quiet
/// service still spreads its connections (the original always picked the
/// last of the tied backends).
public struct LeastConnections: Sendable, Equatable {
    /// Where the rotation among tied backends starts next time.
    public private(set) var tieBreaker = 0

    public init() {}

    /// The backend for a new connection, nil when none is up: the first
    /// with the fewest active connections, in rotation from the tie breaker
    /// (the first of `peek`'s order, found in one scan without sorting).
    public mutating func choose<B: BalancedBackend>(_ backends: [B]) -> Int? {
        let n = backends.count
        guard n > 0 else { return nil }
        var best = -1
        var bestLoad = 0
        var i = tieBreaker % n
        for _ in 0..<n {
            if backends[i].isUp {
                let load = backends[i].active
                if best < 0 || load < bestLoad {
                    best = i
                    bestLoad = load
                }
            }
            i += 1
            if i == n { i = 0 }
        }
        guard best >= 0 else { return nil }
        // The next tie starts after the one chosen, so tied backends take
        // turns whatever lies between them.
        tieBreaker = (best + 1) % n
        return best
    }

    /// Every up backend, fewest active connections first, ties in rotation
    /// from the tie breaker.
    public func peek<B: BalancedBackend>(_ backends: [B], into order: inout [Int]) {
        order.removeAll(keepingCapacity: true)
        let n = backends.count
        guard n > 0 else { return }
        appendUp(backends, from: tieBreaker % n, into: &order)
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
