/// Weighted round robin with the original's exact sequence: the current
/// backend is chosen `weight` times in a row, then the next up backend in
/// list order; down backends are skipped.
///
/// One difference: the original looked at `count` positions only, so when
/// the current backend had used up its weight and every other backend was
/// down, it found none (every other connection failed while one of two
/// backends was down). Looking once more, back at the current backend with
/// a fresh count, fixes that without changing any sequence it did produce.
public struct RoundRobin: Sendable, Equatable {
    /// Index of the backend being repeated.
    public private(set) var current = 0
    /// How many times in a row it has been chosen.
    public private(set) var count = 0

    public init() {}

    /// The backend for a new connection, nil when none is up.
    public mutating func choose<B: BalancedBackend>(_ backends: [B]) -> Int? {
        let n = backends.count
        guard n > 0 else { return nil }
        // The list may have shrunk since the last choice.
        if current >= n {
            current = 0
            count = 0
        }
        for _ in 0...n {
            if backends[current].isUp && count < backends[current].weight {
                count += 1
                return current
            }
            current += 1
            if current == n { current = 0 }
            count = 0
        }
        return nil
    }

    /// The rotation from the current backend on, without choosing: after a
    /// choice, the chosen backend and then the next up ones in list order.
    public func peek<B: BalancedBackend>(_ backends: [B], into order: inout [Int]) {
        order.removeAll(keepingCapacity: true)
        guard !backends.isEmpty else { return }
        appendUp(backends, from: current < backends.count ? current : 0, into: &order)
    }
}
