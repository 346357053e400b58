import ShuttleSim
import Testing

/// The CI sweep: 200 seeds of 10,000 events each, in eight parallel parts.
@Suite struct SweepTests {
    static let seedsPerPart: UInt64 = 25

    // No seed of the sweep breaks an invariant, and every run ends with all traffic over.
    @Test(arguments: 0..<8)
    func sweepPart(_ part: Int) async {
        let first = UInt64(part) * Self.seedsPerPart + 1
        for seed in first..<(first + Self.seedsPerPart) {
            // Each run is synchronous and CPU-bound: let the other tests'
            // tasks (sockets, child processes) have the shared threads between runs.
            await Task.yield()
            let result = Fuzzer.run(seed: seed, steps: 10_000)
            #expect(result.events >= 10_000)
            if let failure = result.failure {
                Issue.record("seed \(seed): \(failure); reproduce with: shuttle sim fuzz --seed \(seed) --steps 10000")
            }
        }
    }
}
