import ShuttleModel

/// The simulator's one source of randomness. Every choice of a run (the
/// world, the workload, the faults, the model's own seed) is drawn from this
/// seeded generator, so a seed reproduces the whole run.
struct SimRandom {
    var generator: SeededGenerator

    init(seed: UInt64) { generator = SeededGenerator(seed: seed) }

    mutating func next() -> UInt64 { generator.next() }

    /// Uniform in `range` (the modulo bias is negligible for our ranges).
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) + 1
        return range.lowerBound + Int(next() % span)
    }

    /// Uniform in `range`, for durations.
    mutating func nanos(_ range: ClosedRange<UInt64>) -> UInt64 {
        range.lowerBound + next() % (range.upperBound - range.lowerBound + 1)
    }

    /// A number in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    mutating func chance(_ probability: Double) -> Bool { unit() < probability }

    mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }

    /// An index drawn with the given weights (at least one positive).
    mutating func weighted(_ weights: [Int]) -> Int {
        let total = weights.reduce(0, +)
        var draw = int(0...(total - 1))
        for (i, w) in weights.enumerated() {
            if draw < w { return i }
            draw -= w
        }
        return weights.count - 1
    }
}
