/// SplitMix64: a small, fast generator whose whole sequence follows from its
/// seed. The model draws from one of these, never from global randomness.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// A moment on the driver's clock (the real monotonic clock in production,
/// the virtual one in the simulator), in nanoseconds from an arbitrary origin.
public struct Instant: Comparable, Hashable, Sendable, Codable {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func milliseconds(_ ms: UInt64) -> Instant { Instant(nanoseconds: ms * 1_000_000) }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static let zero = Instant(nanoseconds: 0)
}
