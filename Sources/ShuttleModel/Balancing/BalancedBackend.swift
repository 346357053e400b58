/// What a balancer needs to know of a backend.
public protocol BalancedBackend {
    /// Passing its health checks (or not checked at all).
    var isUp: Bool { get }
    /// Round-robin weight, at least 1.
    var weight: Int { get }
    /// Connections open now.
    var active: Int { get }
    /// Stable identity for consistent hashing.
    var name: String { get }
}

/// A plain backend description, for tests and benchmarks.
public struct BackendLoad: BalancedBackend, Equatable, Sendable {
    public var name: String
    public var isUp: Bool
    public var weight: Int
    public var active: Int

    public init(name: String, isUp: Bool = true, weight: Int = 1, active: Int = 0) {
        self.name = name
        self.isUp = isUp
        self.weight = weight
        self.active = active
    }
}

/// The state of one service's balancing, whatever its method. A new
/// connection gets only the method's first choice, found without ordering
/// the rest; the full order of fallbacks (indices into the backend list,
/// best first) is worked out only after a failed connect, reusing the
/// caller's storage so that neither allocates.
public struct Balancer: Sendable {
    public var roundRobin = RoundRobin()
    public var leastConnections = LeastConnections()
    public var ring = HashRing()

    public init() {}

    /// The backend for a new connection (an index into `backends`, nil when
    /// none is up), advancing the method's position (round robin's count,
    /// least connections' tie breaker). It is the first of the order the
    /// method would give: `peek` before the move.
    /// Inside the module it is specialised for the registry's backends; the
    /// plain `BackendLoad` of tests and benchmarks gets an exported
    /// specialisation, so that callers outside measure the same code.
    @_specialize(exported: true, where B == BackendLoad, R == SeededGenerator)
    public mutating func choose<B: BalancedBackend, R: RandomNumberGenerator>(
        _ method: Balance, _ backends: [B], key: BalanceKey, random: inout R
    ) -> Int? {
        switch method {
        case .roundRobin: roundRobin.choose(backends)
        case .leastConnections: leastConnections.choose(backends)
        case .powerOfTwoChoices: PowerOfTwoChoices.choose(backends, random: &random)
        case .consistentHash: ring.choose(backends, key: key)
        }
    }

    /// Every up backend, best first, without moving any position: the
    /// fallbacks after a failed connect (a rare path, so it may sort).
    @_specialize(exported: true, where B == BackendLoad, R == SeededGenerator)
    public func peek<B: BalancedBackend, R: RandomNumberGenerator>(
        _ method: Balance, _ backends: [B], key: BalanceKey, random: inout R, into order: inout [Int]
    ) {
        switch method {
        case .roundRobin: roundRobin.peek(backends, into: &order)
        case .leastConnections: leastConnections.peek(backends, into: &order)
        case .powerOfTwoChoices: PowerOfTwoChoices.order(backends, random: &random, into: &order)
        case .consistentHash: ring.order(backends, key: key, into: &order)
        }
    }

    /// Called when the backend list changes (names, weights or order).
    @_specialize(exported: true, where B == BackendLoad)
    public mutating func backendsChanged<B: BalancedBackend>(_ backends: [B]) {
        ring = HashRing(backends)
    }
}

/// Appends the up backends in rotation order starting at `start`.
@inline(__always)
func appendUp<B: BalancedBackend>(_ backends: [B], from start: Int, into order: inout [Int]) {
    let count = backends.count
    guard count > 0 else { return }
    var i = start % count
    for _ in 0..<count {
        if backends[i].isUp { order.append(i) }
        i += 1
        if i == count { i = 0 }
    }
}
