import PropertyBased
import Testing

@testable import ShuttleModel

/// The balancer as it was before the first choice became lazy: every choice
/// wrote every up backend, best first, and the connection took the first.
/// Kept as the reference that the lazy choice must agree with exactly.
struct ReferenceBalancer {
    var current = 0
    var count = 0
    var tieBreaker = 0
    var ring = HashRing()

    mutating func choose(
        _ method: Balance, _ backends: [BackendLoad], key: BalanceKey, random: inout SeededGenerator,
        into order: inout [Int]
    ) {
        switch method {
        case .roundRobin: roundRobin(backends, into: &order)
        case .leastConnections:
            leastConnectionsOrder(backends, into: &order)
            if let first = order.first { tieBreaker = (first + 1) % backends.count }
        case .powerOfTwoChoices: powerOfTwo(backends, random: &random, into: &order)
        case .consistentHash: hash(backends, key: key, into: &order)
        }
    }

    func peek(
        _ method: Balance, _ backends: [BackendLoad], key: BalanceKey, random: inout SeededGenerator,
        into order: inout [Int]
    ) {
        switch method {
        case .roundRobin:
            order.removeAll()
            guard !backends.isEmpty else { return }
            Self.appendUp(backends, from: current < backends.count ? current : 0, skip: -1, into: &order)
        case .leastConnections: leastConnectionsOrder(backends, into: &order)
        case .powerOfTwoChoices: powerOfTwo(backends, random: &random, into: &order)
        case .consistentHash: hash(backends, key: key, into: &order)
        }
    }

    static func appendUp(_ backends: [BackendLoad], from start: Int, skip: Int, into order: inout [Int]) {
        let count = backends.count
        guard count > 0 else { return }
        var i = start % count
        for _ in 0..<count {
            if i != skip && backends[i].isUp { order.append(i) }
            i += 1
            if i == count { i = 0 }
        }
    }

    mutating func roundRobin(_ backends: [BackendLoad], into order: inout [Int]) {
        order.removeAll()
        let n = backends.count
        guard n > 0 else { return }
        if current >= n {
            current = 0
            count = 0
        }
        for _ in 0...n {
            let backend = backends[current]
            if backend.isUp && count < backend.weight {
                count += 1
                order.append(current)
                Self.appendUp(backends, from: current + 1, skip: current, into: &order)
                return
            }
            current = (current + 1) % n
            count = 0
        }
    }

    func leastConnectionsOrder(_ backends: [BackendLoad], into order: inout [Int]) {
        order.removeAll()
        let n = backends.count
        guard n > 0 else { return }
        Self.appendUp(backends, from: tieBreaker % n, skip: -1, into: &order)
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

    func powerOfTwo(_ backends: [BackendLoad], random: inout SeededGenerator, into order: inout [Int]) {
        order.removeAll()
        Self.appendUp(backends, from: 0, skip: -1, into: &order)
        let up = order.count
        guard up > 1 else { return }
        let a = Int(random.next(upperBound: UInt64(up)))
        var b = Int(random.next(upperBound: UInt64(up - 1)))
        if b >= a { b += 1 }
        let first = backends[order[b]].active < backends[order[a]].active ? b : a
        order.swapAt(0, first)
    }

    func hash(_ backends: [BackendLoad], key: BalanceKey, into order: inout [Int]) {
        order.removeAll()
        let points = ring.points
        guard !points.isEmpty else { return }
        let upCount = backends.filter(\.isUp).count
        guard upCount > 0 else { return }
        let hash = StableHash.mix(key.value)
        var low = 0
        var high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid].point < hash { low = mid + 1 } else { high = mid }
        }
        var i = low == points.count ? 0 : low
        for _ in 0..<points.count {
            let backend = points[i].backend
            if backend < backends.count && backends[backend].isUp && !order.contains(backend) {
                order.append(backend)
                if order.count == upCount { return }
            }
            i += 1
            if i == points.count { i = 0 }
        }
    }
}

/// One step of a balancer's life: a choice, a failover's order, or a change
/// of the backends between choices.
enum BalancerStep: Sendable, CustomStringConvertible {
    case choose(Balance, key: UInt64)
    case peek(Balance, key: UInt64)
    case toggleUp(Int)
    case setActive(Int, Int)
    case setWeight(Int, Int, reRing: Bool)
    case append(reRing: Bool)
    case removeLast(reRing: Bool)

    var description: String {
        switch self {
        case .choose(let m, let k): "choose(\(m), \(k))"
        case .peek(let m, let k): "peek(\(m), \(k))"
        case .toggleUp(let i): "toggleUp(\(i))"
        case .setActive(let i, let a): "setActive(\(i), \(a))"
        case .setWeight(let i, let w, let r): "setWeight(\(i), \(w), reRing: \(r))"
        case .append(let r): "append(reRing: \(r))"
        case .removeLast(let r): "removeLast(reRing: \(r))"
        }
    }
}

/// A backend list of 1-20 (up or down, weights 1-4, few active connections
/// so that ties are common), a seed, and up to 80 steps.
let balancerLives = generator { d -> ([BackendLoad], UInt64, [BalancerStep]) in
    let upChance = d.element([0.2, 0.7, 1.0])
    let backends = (0..<d.int(1...20)).map { i in
        BackendLoad(name: "b\(i)", isUp: d.chance(upChance), weight: d.int(1...4), active: d.int(0...3))
    }
    let favourite = d.element(Balance.allCases)
    let steps = (0..<d.int(1...80)).map { _ -> BalancerStep in
        let method = d.chance(0.7) ? favourite : d.element(Balance.allCases)
        let key = UInt64(d.int(0...Int.max))
        switch d.int(0...19) {
        case 0...9: return .choose(method, key: key)
        case 10...11: return .peek(method, key: key)
        case 12...13: return .toggleUp(d.int(0...19))
        case 14...15: return .setActive(d.int(0...19), d.int(0...5))
        case 16: return .setWeight(d.int(0...19), d.int(1...4), reRing: d.bool())
        case 17: return .append(reRing: d.chance(0.8))
        default: return .removeLast(reRing: d.chance(0.8))
        }
    }
    return (backends, UInt64(d.int(0...Int.max)), steps)
}

@Suite struct LazyChoiceTests {
    // The lazy first choice is the reference's first of the full order, leaving the same rotation, tie breaker and generator.
    @Test func theLazyChoiceIsTheFullOrdersFirst() async {
        await propertyCheck(count: 300, input: balancerLives) { start, seed, steps in
            var backends = start
            var balancer = Balancer()
            var reference = ReferenceBalancer()
            balancer.backendsChanged(backends)
            // The ring is built as before; only the walk on it changed.
            reference.ring = balancer.ring
            var random = SeededGenerator(seed: seed)
            var referenceRandom = random
            var order: [Int] = []
            var expected: [Int] = []
            for (n, step) in steps.enumerated() {
                let context = "step \(n) \(step) of \(steps) on \(backends)"
                switch step {
                case .choose(let method, let key):
                    let chosen = balancer.choose(method, backends, key: BalanceKey(key), random: &random)
                    reference.choose(method, backends, key: BalanceKey(key), random: &referenceRandom, into: &expected)
                    #expect(chosen == expected.first, "\(context)")
                case .peek(let method, let key):
                    balancer.peek(method, backends, key: BalanceKey(key), random: &random, into: &order)
                    reference.peek(method, backends, key: BalanceKey(key), random: &referenceRandom, into: &expected)
                    #expect(order == expected, "\(context)")
                case .toggleUp(let i):
                    if i < backends.count { backends[i].isUp.toggle() }
                case .setActive(let i, let active):
                    if i < backends.count { backends[i].active = active }
                case .setWeight(let i, let weight, let reRing):
                    if i < backends.count { backends[i].weight = weight }
                    if reRing {
                        balancer.backendsChanged(backends)
                        reference.ring = balancer.ring
                    }
                case .append(let reRing):
                    backends.append(BackendLoad(name: "b\(backends.count)-\(n)", isUp: n % 3 != 0, active: n % 4))
                    if reRing {
                        balancer.backendsChanged(backends)
                        reference.ring = balancer.ring
                    }
                case .removeLast(let reRing):
                    if !backends.isEmpty { backends.removeLast() }
                    if reRing {
                        balancer.backendsChanged(backends)
                        reference.ring = balancer.ring
                    }
                }
                #expect(balancer.roundRobin.current == reference.current, "\(context)")
                #expect(balancer.roundRobin.count == reference.count, "\(context)")
                #expect(balancer.leastConnections.tieBreaker == reference.tieBreaker, "\(context)")
                #expect(random == referenceRandom, "\(context)")
            }
        }
    }

    // The same with every backend up and tied, where rotation and tie breaking decide everything.
    @Test func theLazyChoiceAgreesWhenEveryBackendIsTied() {
        for count in 1...20 {
            let backends = (0..<count).map { BackendLoad(name: "b\($0)", weight: 1 + $0 % 3) }
            for method in Balance.allCases {
                var balancer = Balancer()
                var reference = ReferenceBalancer()
                balancer.backendsChanged(backends)
                reference.ring = balancer.ring
                var random = SeededGenerator(seed: UInt64(count))
                var referenceRandom = random
                var expected: [Int] = []
                for call in 0..<(3 * count) {
                    let key = BalanceKey(UInt64(call))
                    let chosen = balancer.choose(method, backends, key: key, random: &random)
                    reference.choose(method, backends, key: key, random: &referenceRandom, into: &expected)
                    #expect(chosen == expected.first, "\(method) call \(call) of \(count) backends")
                }
                #expect(balancer.roundRobin.current == reference.current && balancer.roundRobin.count == reference.count)
                #expect(balancer.leastConnections.tieBreaker == reference.tieBreaker && random == referenceRandom)
            }
        }
    }

    // The ring's buckets find the same start as a binary search of the whole ring, for rings of any size.
    @Test func theBucketsFindTheSameStartAsTheWholeRing() async {
        let rings = generator { d -> ([BackendLoad], [UInt64]) in
            // Up to 2 x 1000 x 64 points: past the largest number of buckets.
            let weight = d.element([1, 3, 1000])
            let backends = (0..<d.int(1...3)).map { BackendLoad(name: "b\($0)", weight: weight) }
            return (backends, (0..<200).map { _ in UInt64(d.int(0...Int.max)) &* 2 &+ UInt64(d.int(0...1)) })
        }
        await propertyCheck(count: 30, input: rings) { backends, keys in
            let ring = HashRing(backends)
            let points = ring.points.map(\.point)
            // Keys whose hash falls on a point or on a bucket's edge, too.
            let hashes = keys.map { StableHash.mix($0) } + points.prefix(20) + [0, UInt64.max, 1 << ring.shift]
            for hash in hashes {
                let whole = points.firstIndex { $0 >= hash } ?? 0
                let bucket = Int(hash >> ring.shift)
                var low = ring.bounds[bucket]
                let high = ring.bounds[bucket + 1]
                while low < high && points[low] < hash { low += 1 }
                #expect((low == points.count ? 0 : low) == whole, "hash \(hash) of \(points.count) points")
            }
            for key in keys.prefix(50) {
                let start = ring.points.withUnsafeBufferPointer { ring.start(of: BalanceKey(key), in: $0) }
                let hash = StableHash.mix(key)
                #expect(start == (points.firstIndex { $0 >= hash } ?? 0), "key \(key) of \(points.count) points")
            }
        }
    }
}
