/// Rise/fall hysteresis of one backend's health checks: `fall` failures in a
/// row mark an up backend down, `rise` successes in a row mark a down
/// backend up. A new backend starts up. (The original never applied rise and
/// fall: one result flipped the state.)
public struct HealthState: Sendable, Equatable {
    public private(set) var isUp = true
    /// Consecutive results that disagree with the current state.
    public private(set) var streak = 0
    public private(set) var successes = 0
    public private(set) var failures = 0

    public init() {}

    /// Records one check result; returns true when the state flipped.
    public mutating func record(passed: Bool, rise: Int, fall: Int) -> Bool {
        if passed { successes += 1 } else { failures += 1 }
        guard passed != isUp else {
            streak = 0
            return false
        }
        streak += 1
        guard streak >= (isUp ? fall : rise) else { return false }
        isUp.toggle()
        streak = 0
        return true
    }
}
