import ShuttleModel

/// A failed seed, investigated: its trace up to the failure and, when the
/// model's trace shows the violation, that trace shrunk.
public struct FailureReport: Sendable {
    public var seed: UInt64
    public var steps: Int
    public var failure: SimulationFailure
    /// The model's steps up to the failure.
    public var trace: Scenario
    /// The shrunk trace, which `sim replay` reproduces.
    public var shrunk: Shrinker.Result?

    /// The scenario to write: the shrunk one if there is one.
    public var scenario: Scenario { shrunk?.scenario ?? trace }
}

/// Runs seeds and investigates failures.
public enum Fuzzer {
    public static func run(seed: UInt64, steps: Int) -> SimulationResult {
        Simulation.run(SimulationOptions(seed: seed, steps: steps))
    }

    /// Runs the seed again, recording the model's steps up to the failure, and shrinks them.
    public static func investigate(seed: UInt64, steps: Int, failure: SimulationFailure, shrinkBudget: Int = 4000)
        -> FailureReport
    {
        var options = SimulationOptions(seed: seed, steps: steps)
        options.recordTrace = true
        options.stopAtStep = failure.step
        let again = Simulation.run(options)
        let note =
            "sim fuzz --seed \(seed) --steps \(steps): \(failure.violation.invariant.rawValue) at step \(failure.step): \(failure.violation.detail)"
        let trace = Scenario(seed: again.modelSeed, source: "sim", note: note, steps: again.trace ?? [])
        var report = FailureReport(seed: seed, steps: steps, failure: failure, trace: trace)
        if failure.inModelTrace {
            report.shrunk = Shrinker.shrink(trace, invariant: failure.violation.invariant, budget: shrinkBudget)
        }
        return report
    }

    /// A step in one line, for printing.
    public static func describe(_ step: TimedStep, limit: Int = 400) -> String {
        let line = String(decoding: Scenario.line(step), as: UTF8.self)
        return line.count > limit ? String(line.prefix(limit)) + "..." : line
    }
}
