/// Power of two random choices: draw two different up backends with the
/// seeded generator and take the less loaded (the first drawn on a tie);
/// the other up backends follow as fallbacks.
public enum PowerOfTwoChoices {
    /// The backend for a new connection, nil when none is up: the first of
    /// `order`'s result for the same draws, without writing the order.
    public static func choose<B: BalancedBackend, R: RandomNumberGenerator>(
        _ backends: [B], random: inout R
    ) -> Int? {
        var up = 0
        var onlyUp = -1
        for i in backends.indices where backends[i].isUp {
            if up == 0 { onlyUp = i }
            up += 1
        }
        guard up > 1 else { return up == 1 ? onlyUp : nil }
        let a = Int(random.next(upperBound: UInt64(up)))
        var b = Int(random.next(upperBound: UInt64(up - 1)))
        if b >= a { b += 1 }
        // The a-th and b-th up backends, in list order.
        var first = -1
        var second = -1
        var rank = 0
        for i in backends.indices where backends[i].isUp {
            if rank == a { first = i }
            if rank == b { second = i }
            if first >= 0 && second >= 0 { break }
            rank += 1
        }
        return backends[second].active < backends[first].active ? second : first
    }

    /// The up backends in list order, with the less loaded of two drawn
    /// ones swapped to the front.
    public static func order<B: BalancedBackend, R: RandomNumberGenerator>(
        _ backends: [B], random: inout R, into order: inout [Int]
    ) {
        order.removeAll(keepingCapacity: true)
        appendUp(backends, from: 0, into: &order)
        let up = order.count
        guard up > 1 else { return }
        let a = Int(random.next(upperBound: UInt64(up)))
        var b = Int(random.next(upperBound: UInt64(up - 1)))
        if b >= a { b += 1 }
        let first = backends[order[b]].active < backends[order[a]].active ? b : a
        order.swapAt(0, first)
    }
}
