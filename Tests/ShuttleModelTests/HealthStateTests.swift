import PropertyBased
import Testing

@testable import ShuttleModel

/// Rise and fall as the contract states them, kept as the list of results
/// since the state last changed: an up backend goes down once the last
/// `fall` of them are failures, a down one comes up once the last `rise`
/// are successes.
struct ReferenceHealth {
    var isUp = true
    var sinceChange: [Bool] = []
    var successes = 0
    var failures = 0

    /// Returns whether the state changed.
    mutating func record(passed: Bool, rise: Int, fall: Int) -> Bool {
        if passed { successes += 1 } else { failures += 1 }
        sinceChange.append(passed)
        let needed = isUp ? fall : rise
        let run = sinceChange.suffix(needed)
        guard run.count == needed, run.allSatisfy({ $0 == !isUp }) else { return false }
        isUp.toggle()
        sinceChange = []
        return true
    }
}

/// Records `results` in order; whether each one flipped the state.
func record(_ health: inout HealthState, _ results: [Bool], rise: Int, fall: Int) -> [Bool] {
    results.map { health.record(passed: $0, rise: rise, fall: fall) }
}

/// `count` equal values.
func checkResults(_ count: Int, _ passed: Bool) -> [Bool] { Array(repeating: passed, count: count) }

@Suite struct HealthStateTests {
    @Test func aNewBackendStartsUp() {
        let health = HealthState()
        #expect(health.isUp)
        #expect(health.successes == 0 && health.failures == 0)
    }

    @Test func oneFailedCheckDoesNotMarkABackendDownWhenFallIsTwo() {
        // The original flipped on every single result.
        var health = HealthState()
        #expect(record(&health, [false], rise: 2, fall: 2) == [false])
        #expect(health.isUp)
        #expect(record(&health, [false], rise: 2, fall: 2) == [true])
        #expect(!health.isUp)
    }

    @Test func aSuccessBetweenFailuresStartsTheCountAgain() {
        var health = HealthState()
        #expect(record(&health, [false, false, true, false, false], rise: 2, fall: 3) == checkResults(5, false))
        #expect(health.isUp)
        #expect(record(&health, [false], rise: 2, fall: 3) == [true])
        #expect(!health.isUp)
    }

    @Test func aDownBackendComesUpAfterRiseSuccessesInARow() {
        var health = HealthState()
        #expect(record(&health, [false], rise: 3, fall: 1) == [true])
        #expect(!health.isUp)
        #expect(record(&health, [true, true, false, true, true], rise: 3, fall: 1) == checkResults(5, false))
        #expect(!health.isUp)
        #expect(record(&health, [true], rise: 3, fall: 1) == [true])
        #expect(health.isUp)
    }

    @Test func resultsThatAgreeWithTheStateChangeNothing() {
        var health = HealthState()
        #expect(record(&health, checkResults(10, true), rise: 1, fall: 1) == checkResults(10, false))
        #expect(health.isUp)
    }

    @Test func countersCountEveryResult() {
        var health = HealthState()
        for passed in [true, false, false, true, false, true, true] {
            _ = health.record(passed: passed, rise: 2, fall: 2)
        }
        #expect(health.successes == 4)
        #expect(health.failures == 3)
    }

    // Over any sequence of results the state flips exactly when the reference's does: after `fall` failures or `rise` successes in a row.
    @Test func stateFlipsOnlyAfterRiseOrFallResultsInARow() async {
        let results = generator { d in (0..<d.int(0...60)).map { _ in d.chance(d.chance(0.5) ? 0.8 : 0.3) } }
        await propertyCheck(count: 300, input: results, Gen.int(in: 1...5), Gen.int(in: 1...5)) { results, rise, fall in
            var health = HealthState()
            var reference = ReferenceHealth()
            for (step, passed) in results.enumerated() {
                let flipped = health.record(passed: passed, rise: rise, fall: fall)
                let expected = reference.record(passed: passed, rise: rise, fall: fall)
                #expect(flipped == expected, "step \(step) of \(results)")
                #expect(health.isUp == reference.isUp, "step \(step) of \(results)")
                #expect(health.successes == reference.successes)
                #expect(health.failures == reference.failures)
                if flipped != expected { return }
            }
        }
    }

    // A state change needs at least `fall` (going down) or `rise` (coming up) results since the last change.
    @Test func flipsAreAtLeastRiseOrFallResultsApart() async {
        let results = generator { d in (0..<d.int(0...60)).map { _ in d.bool() } }
        await propertyCheck(count: 300, input: results, Gen.int(in: 1...5), Gen.int(in: 1...5)) { results, rise, fall in
            var health = HealthState()
            var sinceChange = 0
            for passed in results {
                let wasUp = health.isUp
                sinceChange += 1
                if health.record(passed: passed, rise: rise, fall: fall) {
                    #expect(sinceChange >= (wasUp ? fall : rise))
                    #expect(passed != wasUp)
                    sinceChange = 0
                }
            }
        }
    }
}
