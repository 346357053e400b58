import ShuttleModel

/// What replaying a scenario found.
public struct ReplayReport: Sendable {
    /// A step where the model decided otherwise than recorded.
    public struct Difference: Sendable, CustomStringConvertible {
        /// Counted from 1, over the steps (the header is not a step).
        public var step: Int
        public var event: Event
        public var recorded: [Action]
        public var replayed: [Action]

        public var description: String {
            "step \(step): \(event)\n  recorded: \(recorded)\n  replayed: \(replayed)"
        }
    }

    public var steps: Int
    /// Steps replayed before stopping.
    public var replayed: Int
    public var firstDifference: Difference?
    /// The first broken invariant, and the step (from 1) after which it was found.
    public var violation: (step: Int, violation: Violation)?
    /// The actions the model gave, step by step (for writing a scenario again).
    public var decisions: [[Action]]

    public var isClean: Bool { firstDifference == nil && violation == nil }
}

/// Drives a fresh model with a scenario's events and compares every
/// decision with the recorded one; runs the invariant checker beside it.
public enum Replay {
    /// - Parameters:
    ///   - compareDecisions: stop at the first decision that differs from the recording.
    ///   - stopAtViolation: stop at the first broken invariant.
    public static func run(
        _ scenario: Scenario, compareDecisions: Bool = true, checkInvariants: Bool = true, stopAtViolation: Bool = true
    ) -> ReplayReport {
        var registry = Registry(seed: scenario.seed, settings: scenario.settings)
        var checker = InvariantChecker()
        var report = ReplayReport(steps: scenario.steps.count, replayed: 0, decisions: [])
        report.decisions.reserveCapacity(scenario.steps.count)
        for (i, timed) in scenario.steps.enumerated() {
            let step: TraceStep
            switch timed.step {
            case .restart(let seed):
                registry = Registry(seed: seed, settings: scenario.settings)
                step = timed.step
                report.decisions.append([])
            case .event(let event, let recorded, let expect):
                let actions = registry.handle(event)
                report.decisions.append(actions)
                if compareDecisions && actions != recorded && report.firstDifference == nil {
                    report.firstDifference = ReplayReport.Difference(
                        step: i + 1, event: event, recorded: recorded, replayed: actions)
                    report.replayed = i + 1
                    return report
                }
                step = .event(event, actions: actions, expect: expect)
            }
            report.replayed = i + 1
            if checkInvariants && report.violation == nil, let v = checker.observe(step, registry: registry) {
                report.violation = (i + 1, v)
                if stopAtViolation { return report }
            }
        }
        return report
    }

    /// The scenario with each step's actions as this model gives them.
    public static func redecided(_ scenario: Scenario) -> Scenario {
        let report = run(scenario, compareDecisions: false, checkInvariants: false)
        var copy = scenario
        for i in copy.steps.indices {
            if case .event(let event, _, let expect) = copy.steps[i].step {
                copy.steps[i].step = .event(event, actions: report.decisions[i], expect: expect)
            }
        }
        return copy
    }
}
