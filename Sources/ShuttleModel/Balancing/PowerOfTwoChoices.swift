/// Power of two random choices: draw two different up backends with the
/// seeded generator and put the less loaded first; the other up backends
/// follow as fallbacks.
public enum PowerOfTwoChoices {
    public static func choose<B: BalancedBackend, R: RandomNumberGenerator>(
        _ backends: [B], random: inout R, into order: inout [Int]
    ) {
        order.removeAll(keepingCapacity: true)
        appendUp(backends, from: 0, skip: -1, into: &order)
        let up = order.count
        guard up > 1 else { return }
        let a = Int(random.next(upperBound: UInt64(up)))
        var b = Int(random.next(upperBound: UInt64(up - 1)))
        if b >= a { b += 1 }
        let first = backends[order[b]].active < backends[order[a]].active ? b : a
        order.swapAt(0, first)
    }
}
