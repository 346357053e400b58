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

/// The state of one service's balancing, whatever its method: each method
/// writes every up backend, best first, into `order` (indices into the
/// backend list), reusing its storage so that a choice allocates nothing.
public struct Balancer: Sendable {
    public var roundRobin = RoundRobin()
    public var leastConnections = LeastConnections()
    public var ring = HashRing()

    public init() {}

    /// Orders the up backends for a new connection and advances the
    /// method's position (round robin's count, least connections' tie breaker).
    /// Inside the module it is specialised for the registry's backends; the
    /// plain `BackendLoad` of tests and benchmarks gets an exported
    /// specialisation, so that callers outside measure the same code.
    @_specialize(exported: true, where B == BackendLoad, R == SeededGenerator)
    public mutating func choose<B: BalancedBackend, R: RandomNumberGenerator>(
        _ method: Balance, _ backends: [B], key: BalanceKey, random: inout R, into order: inout [Int]
    ) {
        switch method {
        case .roundRobin: roundRobin.choose(backends, into: &order)
        case .leastConnections: leastConnections.choose(backends, into: &order)
        case .powerOfTwoChoices: PowerOfTwoChoices.choose(backends, random: &random, into: &order)
        case .consistentHash: ring.choose(backends, key: key, into: &order)
        }
    }

    /// The same order without moving any position: for the fallbacks after
    /// a failed connect.
    @_specialize(exported: true, where B == BackendLoad, R == SeededGenerator)
    public func peek<B: BalancedBackend, R: RandomNumberGenerator>(
        _ method: Balance, _ backends: [B], key: BalanceKey, random: inout R, into order: inout [Int]
    ) {
        switch method {
        case .roundRobin: roundRobin.peek(backends, into: &order)
        case .leastConnections: leastConnections.peek(backends, into: &order)
        case .powerOfTwoChoices: PowerOfTwoChoices.choose(backends, random: &random, into: &order)
        case .consistentHash: ring.choose(backends, key: key, into: &order)
        }
    }

    /// Called when the backend list changes (names, weights or order).
    @_specialize(exported: true, where B == BackendLoad)
    public mutating func backendsChanged<B: BalancedBackend>(_ backends: [B]) {
        ring = HashRing(backends)
    }
}

/// Appends the up backends in rotation order starting at `start`, skipping
/// `skip` (already placed first).
@inline(__always)
func appendUp<B: BalancedBackend>(_ backends: [B], from start: Int, skip: Int, into order: inout [Int]) {
    let count = backends.count
    guard count > 0 else { return }
    var i = start % count
    for _ in 0..<count {
        if i != skip && backends[i].isUp { order.append(i) }
        i += 1
        if i == count { i = 0 }
    }
}
