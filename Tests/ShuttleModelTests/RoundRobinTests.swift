import PropertyBased
import Testing

@testable import ShuttleModel

/// The original's weighted round robin (litl/shuttle balancer.go), as a
/// reference: per call, up to once around the list, take the current backend
/// if it is up and its weight is not spent, else move to the next one with a
/// fresh count. The original stopped after `count` steps, one short of coming
/// back to the current backend, so the only up backend was refused every
/// other time once its weight was spent; the reference takes that last step.
struct ReferenceRoundRobin {
    var last = 0
    var lastCount = 0

    mutating func next(_ backends: [BackendLoad]) -> Int? {
        let count = backends.count
        guard count > 0 else { return nil }
        if last >= count {
            last = 0
            lastCount = 0
        }
        for _ in 0...count {
            if backends[last].isUp && lastCount < backends[last].weight {
                lastCount += 1
                return last
            }
            last = (last + 1) % count
            lastCount = 0
        }
        return nil
    }
}

/// First choices of `calls` consecutive round-robin choices, by name ("-" for none).
func roundRobinFirsts(_ backends: [BackendLoad], calls: Int, robin: inout RoundRobin) -> [String] {
    (0..<calls).map { _ in
        robin.choose(backends).map { backends[$0].name } ?? "-"
    }
}

func roundRobinFirsts(_ backends: [BackendLoad], calls: Int) -> [String] {
    var robin = RoundRobin()
    return roundRobinFirsts(backends, calls: calls, robin: &robin)
}

/// Backends named a, b, c... with these weights, all up but `down`.
func loads(_ weights: [Int], down: Set<Int> = []) -> [BackendLoad] {
    weights.enumerated().map { i, w in
        BackendLoad(name: String(UnicodeScalar(UInt8(97 + i))), isUp: !down.contains(i), weight: w)
    }
}

/// Backends with random weights (1-5), loads and health, at least one up.
let backendsWithOneUp = generator { d -> [BackendLoad] in
    var backends = (0..<d.int(1...6)).map { i in
        BackendLoad(name: "b\(i)", isUp: d.chance(0.7), weight: d.int(1...5), active: d.int(0...5))
    }
    if !backends.contains(where: \.isUp) { backends[d.int(0...(backends.count - 1))].isUp = true }
    return backends
}

@Suite struct RoundRobinTests {
    @Test func weightsTwoOneThreeGiveTheOriginalSequence() {
        #expect(
            roundRobinFirsts(loads([2, 1, 3]), calls: 14)
                == ["a", "a", "b", "c", "c", "c", "a", "a", "b", "c", "c", "c", "a", "a"])
    }

    @Test func equalWeightsTakeTurnsInListOrder() {
        #expect(roundRobinFirsts(loads([1, 1, 1]), calls: 7) == ["a", "b", "c", "a", "b", "c", "a"])
    }

    @Test func aDownBackendIsSkipped() {
        #expect(roundRobinFirsts(loads([1, 1, 1], down: [1]), calls: 6) == ["a", "c", "a", "c", "a", "c"])
        #expect(roundRobinFirsts(loads([2, 5, 1], down: [1]), calls: 6) == ["a", "a", "c", "a", "a", "c"])
    }

    @Test func aBackendThatGoesDownIsSkippedFromTheNextChoiceOn() {
        var robin = RoundRobin()
        var backends = loads([2, 2, 2])
        let before = roundRobinFirsts(backends, calls: 3, robin: &robin)
        backends[1].isUp = false
        let after = roundRobinFirsts(backends, calls: 5, robin: &robin)
        #expect(before == ["a", "a", "b"])
        #expect(after == ["c", "c", "a", "a", "c"])
    }

    @Test func theOnlyBackendIsChosenEveryTime() {
        #expect(roundRobinFirsts(loads([1]), calls: 5) == ["a", "a", "a", "a", "a"])
        #expect(roundRobinFirsts(loads([3]), calls: 7) == Array(repeating: "a", count: 7))
    }

    @Test func theOnlyUpBackendIsChosenEveryTime() {
        #expect(roundRobinFirsts(loads([1, 1, 1], down: [0, 2]), calls: 5) == Array(repeating: "b", count: 5))
        #expect(roundRobinFirsts(loads([2, 2], down: [0]), calls: 5) == Array(repeating: "b", count: 5))
    }

    @Test func noBackendUpGivesAnEmptyOrder() {
        #expect(roundRobinFirsts(loads([1, 2], down: [0, 1]), calls: 3) == ["-", "-", "-"])
        #expect(roundRobinFirsts([], calls: 2) == ["-", "-"])
    }

    @Test func theRestFollowInListOrderAfterTheFirstChoice() {
        var robin = RoundRobin()
        var order: [Int] = []
        let backends = loads([1, 1, 1, 1], down: [2])
        #expect(robin.choose(backends) == 0)
        robin.peek(backends, into: &order)
        #expect(order == [0, 1, 3])
        #expect(robin.choose(backends) == 1)
        robin.peek(backends, into: &order)
        #expect(order == [1, 3, 0])
        #expect(robin.choose(backends) == 3)
        robin.peek(backends, into: &order)
        #expect(order == [3, 0, 1])
    }

    @Test func peekShowsTheRotationWithoutMovingIt() {
        var robin = RoundRobin()
        var order: [Int] = []
        let backends = loads([1, 1, 1])
        #expect(robin.choose(backends) == 0)
        robin.peek(backends, into: &order)
        #expect(order == [0, 1, 2])
        robin.peek(backends, into: &order)
        #expect(order == [0, 1, 2])
        #expect(robin.choose(backends) == 1)
    }

    @Test func aShrunkListStartsAgainFromTheFirstBackend() {
        var robin = RoundRobin()
        _ = roundRobinFirsts(loads([1, 1, 1, 1]), calls: 4, robin: &robin)
        #expect(roundRobinFirsts(loads([1, 1]), calls: 3, robin: &robin) == ["a", "b", "a"])
    }

    // Over k full cycles (k x the sum of the up weights), each up backend is first exactly weight x k times.
    @Test func overFullCyclesEachUpBackendIsFirstWeightTimesTheCycles() async {
        await propertyCheck(count: 200, input: backendsWithOneUp, Gen.int(in: 1...4)) { backends, k in
            let cycle = backends.filter(\.isUp).map(\.weight).reduce(0, +)
            let firsts = roundRobinFirsts(backends, calls: cycle * k)
            for backend in backends {
                let times = firsts.filter { $0 == backend.name }.count
                #expect(times == (backend.isUp ? backend.weight * k : 0), "\(backend.name) in \(backends)")
            }
        }
    }

    // Step by step, through health changes, the first choice is the original's (where the original chose one).
    @Test func firstChoiceFollowsTheOriginalStepByStep() async {
        let steps = generator { d in (0..<d.int(1...40)).map { _ in d.chance(0.2) ? d.int(0...5) : -1 } }
        await propertyCheck(count: 200, input: backendsWithOneUp, steps) { start, steps in
            var backends = start
            var robin = RoundRobin()
            var reference = ReferenceRoundRobin()
            for step in steps {
                if step >= 0 {
                    // Flip one backend's health between choices.
                    backends[step % backends.count].isUp.toggle()
                    continue
                }
                let expected = reference.next(backends)
                #expect(robin.choose(backends) == expected, "backends \(backends)")
            }
        }
    }
}
