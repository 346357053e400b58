import ShuttleModel

/// Shrinks a failing trace: the fewest steps that still break the same
/// invariant when the model is driven with them alone. Steps are removed
/// first by whole subjects (all the events of one connection, of one
/// backend's checks), then in ever smaller runs (delta debugging); the model
/// decides afresh on every attempt.
public enum Shrinker {
    public struct Result: Sendable {
        public var scenario: Scenario
        public var violation: Violation
        public var attempts: Int
    }

    /// - Parameter budget: most replays to try.
    public static func shrink(_ scenario: Scenario, invariant: Invariant, budget: Int = 4000) -> Result? {
        var attempts = 0
        func failing(_ steps: [TimedStep]) -> (Int, Violation)? {
            attempts += 1
            var candidate = scenario
            candidate.steps = steps
            let report = Replay.run(candidate, compareDecisions: false)
            guard let (step, violation) = report.violation, violation.invariant == invariant else { return nil }
            return (step, violation)
        }
        guard let (first, _) = failing(scenario.steps) else { return nil }
        var steps = Array(scenario.steps.prefix(first))

        // Whole subjects first.
        var units = subjects(steps)
        var chunk = max(1, units.count / 2)
        while chunk >= 1 && attempts < budget && units.count > 1 {
            var i = 0
            var removed = false
            while i < units.count && attempts < budget {
                let drop = Set(units[i..<min(i + chunk, units.count)].flatMap { $0 })
                let candidate = steps.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
                if let (end, _) = failing(candidate) {
                    steps = Array(candidate.prefix(end))
                    units = subjects(steps)
                    removed = true
                } else {
                    i += chunk
                }
            }
            if !removed { chunk /= 2 }
        }

        // Then runs of single steps.
        chunk = max(1, steps.count / 2)
        while chunk >= 1 && attempts < budget {
            var i = 0
            var removed = false
            while i < steps.count && attempts < budget {
                let candidate = Array(steps[..<i] + steps[min(i + chunk, steps.count)...])
                if let (end, _) = failing(candidate) {
                    steps = Array(candidate.prefix(end))
                    removed = true
                } else {
                    i += chunk
                }
            }
            if !removed { chunk /= 2 }
        }

        var result = scenario
        result.steps = steps
        result = Replay.redecided(result)
        guard let (_, violation) = Replay.run(result, compareDecisions: false).violation else { return nil }
        return Result(scenario: result, violation: violation, attempts: attempts)
    }

    /// The steps grouped by what they are about, each group as indices.
    static func subjects(_ steps: [TimedStep]) -> [[Int]] {
        var groups: [String: [Int]] = [:]
        var order: [String] = []
        for (i, timed) in steps.enumerated() {
            let key: String
            switch timed.step {
            case .restart: key = "step \(i)"
            case .event(let event, _, _):
                switch event {
                case .clientConnected(let id, _, _), .backendConnected(let id), .backendConnectFailed(let id, _),
                    .bytesTransferred(let id, _, _), .connectionClosed(let id), .requestReceived(let id, _),
                    .requestFinished(let id, _):
                    key = "connection \(id.raw)"
                case .checkResult(let id, _):
                    key = "checks \(id.raw)"
                case .timeAdvanced:
                    key = "time"
                case .admin, .listenerBound, .listenerFailed:
                    key = "step \(i)"
                }
            }
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(i)
        }
        return order.map { groups[$0]! }
    }
}
