/// A key for consistent hashing, such as the client's address, hashed with
/// a fixed function so that it is the same in every process and run.
public struct BalanceKey: Hashable, Sendable {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    /// Hashes `text` (FNV-1a, then a mixing step).
    public init(_ text: String) { value = StableHash.hash(text) }

    public static let none = BalanceKey(0)
}

/// FNV-1a 64 with a SplitMix64 finaliser: stable across processes, unlike
/// `Hasher`, which is seeded per process.
public enum StableHash {
    public static func hash(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01b3
        }
        return mix(h)
    }

    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Consistent hashing: each backend owns `pointsPerWeight x weight` points
/// on a ring, placed by its name. A key goes to the owner of the first point
/// at or after its hash, skipping down backends. Removing a backend moves
/// only the keys it owned; the others keep theirs.
public struct HashRing: Sendable, Equatable {
    public static let pointsPerWeight = 64

    /// Sorted by `point`.
    var points: [(point: UInt64, backend: Int)] = []
    /// Where a search for a hash starts and ends: the points whose top bits
    /// are `b` lie in `bounds[b]..<bounds[b + 1]`, so that a choice searches
    /// a point or two instead of the whole ring. One bucket per point or so,
    /// the hash's top `64 - shift` bits.
    var bounds: [Int] = []
    var shift: UInt64 = 64

    public init() {}

    public init<B: BalancedBackend>(_ backends: [B]) {
        for (index, backend) in backends.enumerated() {
            let base = StableHash.hash(backend.name)
            for replica in 0..<(Self.pointsPerWeight * max(1, backend.weight)) {
                points.append((StableHash.mix(base ^ UInt64(replica) &* 0x9e37_79b9_7f4a_7c15), index))
            }
        }
        points.sort { $0.point < $1.point || ($0.point == $1.point && $0.backend < $1.backend) }
        guard !points.isEmpty else { return }
        let bits = min(16, UInt64(Int.bitWidth - points.count.leadingZeroBitCount))
        shift = 64 - bits
        bounds.reserveCapacity((1 << bits) + 1)
        var i = 0
        for bucket in 0..<(UInt64(1) << bits) {
            while i < points.count && points[i].point >> shift < bucket { i += 1 }
            bounds.append(i)
        }
        bounds.append(points.count)
    }

    public static func == (lhs: HashRing, rhs: HashRing) -> Bool {
        lhs.points.elementsEqual(rhs.points) { $0.point == $1.point && $0.backend == $1.backend }
    }

    /// The backend for a new connection, nil when none is up: the owner of
    /// the first point at or after the key's hash that is up, found by a
    /// binary search and a walk that stops there.
    public func choose<B: BalancedBackend>(_ backends: [B], key: BalanceKey) -> Int? {
        guard !points.isEmpty else { return nil }
        // None up would walk the whole ring for nothing.
        var anyUp = false
        for i in backends.indices where backends[i].isUp {
            anyUp = true
            break
        }
        guard anyUp else { return nil }
        return points.withUnsafeBufferPointer { points in
            var i = start(of: key, in: points)
            for _ in 0..<points.count {
                let backend = points[i].backend
                if backend < backends.count && backends[backend].isUp { return backend }
                i += 1
                if i == points.count { i = 0 }
            }
            return nil
        }
    }

    /// Every up backend in ring order from the key's position on.
    public func order<B: BalancedBackend>(_ backends: [B], key: BalanceKey, into order: inout [Int]) {
        order.removeAll(keepingCapacity: true)
        guard !points.isEmpty else { return }
        var upCount = 0
        for backend in backends where backend.isUp { upCount += 1 }
        guard upCount > 0 else { return }
        var i = points.withUnsafeBufferPointer { start(of: key, in: $0) }
        // Backends already in `order`, as bits while there are few enough.
        let useMask = backends.count <= UInt64.bitWidth
        var seen: UInt64 = 0
        for _ in 0..<points.count {
            let backend = points[i].backend
            if backend < backends.count && backends[backend].isUp {
                let isNew: Bool
                if useMask {
                    let bit: UInt64 = 1 << UInt64(backend)
                    isNew = seen & bit == 0
                    seen |= bit
                } else {
                    isNew = !order.contains(backend)
                }
                if isNew {
                    order.append(backend)
                    if order.count == upCount { return }
                }
            }
            i += 1
            if i == points.count { i = 0 }
        }
    }

    /// The index of the first point at or after the key's hash (wrapping to
    /// the first point), searched for among the points of the hash's bucket;
    /// `points` is this ring's, not empty.
    @inline(__always)
    func start(of key: BalanceKey, in points: UnsafeBufferPointer<(point: UInt64, backend: Int)>) -> Int {
        let hash = StableHash.mix(key.value)
        let bucket = Int(hash >> shift)
        var low = bounds[bucket]
        var high = bounds[bucket + 1]
        while low < high {
            let mid = (low + high) / 2
            if points[mid].point < hash { low = mid + 1 } else { high = mid }
        }
        return low == points.count ? 0 : low
    }
}
