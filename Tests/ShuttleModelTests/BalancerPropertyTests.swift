import PropertyBased
import Testing

@testable import ShuttleModel

/// Backends with random weights, loads and health (possibly none up).
struct BalancedSet: Sendable {
    var backends: [BackendLoad]
    var up: [Int] { backends.indices.filter { backends[$0].isUp } }
}

let anyBackends = generator { d in
    BalancedSet(
        backends: (0..<d.int(1...6)).map { i in
            BackendLoad(name: "b\(i)", isUp: d.chance(0.7), weight: d.int(1...4), active: d.int(0...4))
        })
}

let methods = generator { $0.element(Balance.allCases) }

/// What each of `calls` consecutive connections would try, with `method` on
/// one balancer: its first choice, then the fallbacks after a failed
/// connect (the balancer's `peek` without the first choice).
func orders(
    _ method: Balance, _ backends: [BackendLoad], calls: Int, key: BalanceKey = .none, seed: UInt64 = 1
) -> [[Int]] {
    var balancer = Balancer()
    balancer.backendsChanged(backends)
    var random = SeededGenerator(seed: seed)
    var order: [Int] = []
    return (0..<calls).map { _ in
        let first = balancer.choose(method, backends, key: key, random: &random)
        balancer.peek(method, backends, key: key, random: &random, into: &order)
        guard let first else { return order }
        return [first] + order.filter { $0 != first }
    }
}

/// The first choice of consistent hashing for each key, from one ring.
func hashOwners(_ backends: [BackendLoad], keys: [BalanceKey]) -> [String?] {
    var balancer = Balancer()
    balancer.backendsChanged(backends)
    var random = SeededGenerator(seed: 0)
    return keys.map { key in
        balancer.choose(.consistentHash, backends, key: key, random: &random).map { backends[$0].name }
    }
}

@Suite struct BalancerPropertyTests {
    // No method puts a down backend first while an up one exists, and each gives a first choice then.
    @Test func noMethodPutsADownBackendFirstWhileOneIsUp() async {
        await propertyCheck(count: 300, input: methods, anyBackends, Gen.int(in: 1...12), Gen.int(in: 0...1000)) {
            method, set, calls, key in
            for order in orders(method, set.backends, calls: calls, key: BalanceKey(UInt64(key))) {
                if set.up.isEmpty {
                    #expect(order.isEmpty, "\(method) \(set.backends)")
                } else {
                    let first = try #require(order.first, "\(method) gave no backend for \(set.backends)")
                    #expect(set.backends[first].isUp, "\(method) \(set.backends)")
                }
            }
        }
    }

    // Every order holds every up backend exactly once and no down one.
    @Test func theOrderHoldsEveryUpBackendExactlyOnce() async {
        await propertyCheck(count: 300, input: methods, anyBackends, Gen.int(in: 1...12), Gen.int(in: 0...1000)) {
            method, set, calls, key in
            for order in orders(method, set.backends, calls: calls, key: BalanceKey(UInt64(key))) {
                #expect(order.sorted() == set.up, "\(method) \(set.backends) gave \(order)")
            }
        }
    }

    // Least connections puts a backend with the fewest active connections first.
    @Test func leastConnectionsPutsALeastActiveBackendFirst() async {
        await propertyCheck(count: 300, input: anyBackends, Gen.int(in: 1...8)) { set, calls in
            guard let least = set.up.map({ set.backends[$0].active }).min() else { return }
            for order in orders(.leastConnections, set.backends, calls: calls) {
                let first = try #require(order.first)
                #expect(set.backends[first].active == least, "\(set.backends) gave \(order)")
            }
        }
    }

    // Least connections orders the up backends by load, fewest first.
    @Test func leastConnectionsOrdersByLoad() async {
        await propertyCheck(count: 200, input: anyBackends) { set in
            for order in orders(.leastConnections, set.backends, calls: 3) {
                let actives = order.map { set.backends[$0].active }
                #expect(actives == actives.sorted(), "\(set.backends) gave \(order)")
            }
        }
    }

    @Test func leastConnectionsTakesTurnsAmongEquallyLoadedBackends() {
        let backends = [BackendLoad(name: "a"), BackendLoad(name: "b"), BackendLoad(name: "c")]
        #expect(orders(.leastConnections, backends, calls: 6).map { $0.first } == [0, 1, 2, 0, 1, 2])
    }

    @Test func leastConnectionsSharesEvenlyAmongTiedBackendsWhenOthersAreBusyOrDown() {
        // The tie breaker must not favour the backend that follows a busy or down one.
        for other in [BackendLoad(name: "b", active: 3), BackendLoad(name: "b", isUp: false)] {
            let backends = [BackendLoad(name: "a"), other, BackendLoad(name: "c")]
            let firsts = orders(.leastConnections, backends, calls: 6).compactMap(\.first)
            #expect(firsts.filter { $0 == 0 }.count == 3, "\(other): first choices \(firsts)")
            #expect(firsts.filter { $0 == 2 }.count == 3, "\(other): first choices \(firsts)")
        }
    }

    // With two up backends of different load, power of two choices always puts the less loaded first.
    @Test func powerOfTwoPutsTheLessLoadedOfTwoFirst() async {
        let pair = generator { d -> [BackendLoad] in
            let low = d.int(0...10)
            let high = low + d.int(1...10)
            var backends = d.shuffled([BackendLoad(name: "low", active: low), BackendLoad(name: "high", active: high)])
            // Down backends around them change nothing.
            for i in 0..<d.int(0...3) {
                backends.insert(BackendLoad(name: "down\(i)", isUp: false), at: d.int(0...backends.count))
            }
            return backends
        }
        await propertyCheck(count: 200, input: pair, Gen.int(in: 0...1_000_000)) { backends, seed in
            for order in orders(.powerOfTwoChoices, backends, calls: 5, seed: UInt64(seed)) {
                let first = try #require(order.first)
                #expect(backends[first].name == "low", "\(backends) gave \(order)")
            }
        }
    }

    // Power of two choices never puts first a backend strictly more loaded than every other up one.
    @Test func powerOfTwoNeverPutsTheMostLoadedFirst() async {
        await propertyCheck(count: 300, input: anyBackends, Gen.int(in: 0...1_000_000)) { set, seed in
            let loads = set.up.map { set.backends[$0].active }
            guard loads.count >= 2, let most = loads.max(), loads.filter({ $0 == most }).count == 1 else { return }
            for order in orders(.powerOfTwoChoices, set.backends, calls: 8, seed: UInt64(seed)) {
                let first = try #require(order.first)
                #expect(set.backends[first].active < most, "\(set.backends) gave \(order)")
            }
        }
    }

    @Test func powerOfTwoSpreadsAmongEquallyLoadedBackends() {
        let backends = (0..<4).map { BackendLoad(name: "b\($0)") }
        let firsts = Set(orders(.powerOfTwoChoices, backends, calls: 200, seed: 7).compactMap(\.first))
        #expect(firsts == [0, 1, 2, 3])
    }

    // Consistent hashing gives a key the same order while the backends are unchanged, in a fresh balancer too.
    @Test func hashIsStableForAKeyWhileTheSetIsUnchanged() async {
        await propertyCheck(count: 200, input: anyBackends, Gen.int(in: 0...Int.max)) { set, key in
            let k = BalanceKey(UInt64(key))
            let first = orders(.consistentHash, set.backends, calls: 5, key: k)
            let again = orders(.consistentHash, set.backends, calls: 1, key: k, seed: 99)
            for order in first + again {
                #expect(order == first[0])
            }
        }
    }

    // Removing a backend moves only the keys it owned: every other key keeps its first choice.
    @Test func removingABackendMovesOnlyTheKeysItOwned() async {
        let keys = generator { d in
            (0..<50).map { _ in BalanceKey("10.0.\(d.int(0...255)).\(d.int(0...255)):\(d.int(1...65535))") }
        }
        await propertyCheck(count: 100, input: anyBackends, Gen.int(in: 0...5), keys) { set, removed, keys in
            guard removed < set.backends.count else { return }
            var fewer = set.backends
            let gone = fewer.remove(at: removed)
            for (key, (before, after)) in zip(keys, zip(hashOwners(set.backends, keys: keys), hashOwners(fewer, keys: keys))) {
                if before == gone.name {
                    #expect(after != gone.name)
                } else {
                    #expect(after == before, "key \(key) moved from \(before ?? "-") to \(after ?? "-")")
                }
            }
        }
    }

    @Test func hashSpreadsKeysOverTheBackends() {
        let backends = (0..<4).map { BackendLoad(name: "backend-\($0)") }
        var owners: [String: Int] = [:]
        for owner in hashOwners(backends, keys: (0..<2000).map { BalanceKey("client-\($0)") }) {
            owners[owner ?? "-", default: 0] += 1
        }
        // Each of 4 backends owns a fair share: between half and twice a quarter.
        for backend in backends {
            #expect((250...1000).contains(owners[backend.name, default: 0]), "\(owners)")
        }
    }

    @Test func hashWeightGivesAProportionalShare() {
        let backends = [BackendLoad(name: "light", weight: 1), BackendLoad(name: "heavy", weight: 4)]
        let heavy = hashOwners(backends, keys: (0..<2000).map { BalanceKey("k\($0)") }).filter { $0 == "heavy" }.count
        #expect((1400...1800).contains(heavy), "heavy got \(heavy) of 2000")
    }

    @Test func peekDoesNotMoveTheRotation() {
        let backends = [BackendLoad(name: "a"), BackendLoad(name: "b"), BackendLoad(name: "c")]
        for method in [Balance.roundRobin, .leastConnections] {
            var balancer = Balancer()
            balancer.backendsChanged(backends)
            var random = SeededGenerator(seed: 3)
            #expect(balancer.choose(method, backends, key: .none, random: &random) == 0, "\(method)")
            var peeked: [Int] = []
            var order: [Int] = []
            balancer.peek(method, backends, key: .none, random: &random, into: &peeked)
            balancer.peek(method, backends, key: .none, random: &random, into: &order)
            #expect(order == peeked, "\(method)")
            #expect(balancer.choose(method, backends, key: .none, random: &random) == 1, "\(method)")
        }
    }
}
