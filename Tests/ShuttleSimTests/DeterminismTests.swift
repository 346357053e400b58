import PropertyBased
import ShuttleModel
import ShuttleSim
import Testing

@Suite struct DeterminismTests {
    // The same seed gives the same run, byte for byte: the same digest and counts.
    @Test func aSeedReproducesItsRun() async {
        await propertyCheck(count: 8, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            let first = Fuzzer.run(seed: seed, steps: 3_000)
            let second = Fuzzer.run(seed: seed, steps: 3_000)
            #expect(first.digest == second.digest, "seed \(seed)")
            #expect(first.events == second.events && first.modelEvents == second.modelEvents, "seed \(seed)")
            #expect(first.outcomes == second.outcomes, "seed \(seed)")
            #expect(first.failure == nil, "seed \(seed): \(first.failure.map { "\($0)" } ?? "")")
        }
    }

    @Test func differentSeedsGiveDifferentRuns() {
        let digests = (1...20).map { Fuzzer.run(seed: $0, steps: 2_000).digest }
        #expect(Set(digests.map(\.value)).count == digests.count)
    }

    @Test func aRecordedTraceIsTheRunsModelSteps() {
        var options = SimulationOptions(seed: 7, steps: 3_000)
        options.recordTrace = true
        let recorded = Simulation.run(options)
        let plain = Fuzzer.run(seed: 7, steps: 3_000)
        #expect(recorded.digest == plain.digest)
        let events = recorded.trace?.filter { if case .event = $0.step { return true } else { return false } }.count
        #expect(events == recorded.modelEvents)
    }

    @Test func aRunHasEveryKindOfTraffic() {
        var kinds: Set<String> = []
        for seed in UInt64(1)...30 {
            let result = Fuzzer.run(seed: seed, steps: 5_000)
            for key in result.outcomes.keys { kinds.insert(String(key.prefix { $0 != " " })) }
        }
        #expect(kinds.isSuperset(of: ["tcp", "http", "udp", "admin"]))
    }
}
