import ArgumentParser
import FoundationEssentials
import ShuttleModel
import ShuttleRuntime
import ShuttleSim

/// `shuttle sim`: the deterministic simulator of the proxy's model.
struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run the proxy's model on a simulated network (fuzz), or replay a recorded scenario.",
        subcommands: [SimFuzz.self, SimReplay.self]
    )
}

/// `shuttle sim fuzz --seed S --steps N`, `--seeds A...B`.
struct SimFuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Simulate seeded runs with faults and config churn, checking every invariant after every event.",
        discussion: """
            Each seed prints one line: events, connections, faults and the digest of its trace (the same seed \
            always gives the same digest). On a broken invariant it prints the seed, the step, the invariant and \
            the shrunk trace, writes the trace as a scenario file for `shuttle sim replay`, and exits 1.
            """
    )

    @Option(help: "The seed to run.")
    var seed: UInt64?

    @Option(help: "A range of seeds to run, A...B (inclusive).")
    var seeds: String?

    @Option(help: "Events of the workload phase per seed (a drain phase follows).")
    var steps = 10_000

    @Option(help: "Where to write the scenario of a failure (default: sim-failure-SEED.jsonl).")
    var out: String?

    @Option(help: "Most replays to spend shrinking a failing trace.")
    var shrinkBudget = 4_000

    @Flag(help: "Print only failures and the total.")
    var quiet = false

    func seedList() throws -> ClosedRange<UInt64> {
        if let seeds {
            for separator in ["...", "..", "-"] {
                let parts = seeds.components(separatedBy: separator)
                if parts.count == 2, let a = UInt64(parts[0]), let b = UInt64(parts[1]), a <= b { return a...b }
            }
            throw ValidationError("--seeds \"\(seeds)\" is not a range such as 1...200")
        }
        let one = seed ?? 1
        return one...one
    }

    func run() throws {
        let range = try seedList()
        guard steps > 0 else { throw ValidationError("--steps must be positive") }
        let clock = ContinuousClock()
        var totalEvents = 0
        var totalTime = Duration.zero
        var failed: [UInt64] = []
        for seed in range {
            let started = clock.now
            let result = Fuzzer.run(seed: seed, steps: steps)
            let elapsed = started.duration(to: clock.now)
            totalEvents += result.events
            totalTime += elapsed
            let rate = Double(result.events) / max(elapsed.seconds, 1e-9)
            if !quiet || result.failure != nil {
                print("\(result.summary) events/s=\(Int(rate))\(result.failure == nil ? "" : " FAILED")")
            }
            guard let failure = result.failure else { continue }
            failed.append(seed)
            report(seed: seed, failure)
        }
        let rate = Double(totalEvents) / max(totalTime.seconds, 1e-9)
        print(
            "\(range.count) seed(s), \(failed.count) failed, \(totalEvents) events in \(twoDecimals(totalTime.seconds)) s, events/s=\(Int(rate))"
        )
        if !failed.isEmpty { throw ExitCode(1) }
    }

    func report(seed: UInt64, _ failure: SimulationFailure) {
        print("seed \(seed): invariant \(failure.violation.invariant.rawValue) broken at step \(failure.step) (virtual time \(failure.time / 1_000_000) ms)")
        print("  \(failure.violation.detail)")
        let report = Fuzzer.investigate(seed: seed, steps: steps, failure: failure, shrinkBudget: shrinkBudget)
        if let shrunk = report.shrunk {
            print(
                "shrunk trace: \(shrunk.scenario.steps.count) of \(report.trace.steps.count) model steps (\(shrunk.attempts) replays); it breaks: \(shrunk.violation)"
            )
        } else if failure.inModelTrace {
            print("the trace could not be shrunk; the whole trace (\(report.trace.steps.count) model steps) follows")
        } else {
            print(
                "this invariant is about the simulated clients, not the model's steps alone: the model's trace (\(report.trace.steps.count) steps) replays, but shows no violation by itself; reproduce with: shuttle sim fuzz --seed \(seed) --steps \(steps)"
            )
        }
        let steps = report.scenario.steps
        for (i, step) in steps.enumerated().suffix(60) {
            let number = String(i + 1)
            print(String(repeating: " ", count: max(0, 5 - number.count)) + number + " " + Fuzzer.describe(step))
        }
        if steps.count > 60 { print("  (the first \(steps.count - 60) steps are in the file)") }
        let path = out ?? "sim-failure-\(seed).jsonl"
        do {
            try report.scenario.write(path: path)
            print("wrote \(path); reproduce with: shuttle sim replay \(path)")
        } catch {
            print("cannot write \(path): \(error)")
        }
    }
}

/// `shuttle sim replay FILE`.
struct SimReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Drive the model with a recorded scenario's events; check that every decision is the same and every invariant holds."
    )

    @Argument(help: "A scenario file (JSON lines), from `shuttle -record FILE` or `shuttle sim fuzz`.")
    var file: String

    @Flag(help: "Only compare decisions; do not check the invariants.")
    var noInvariants = false

    func run() throws {
        let scenario: Scenario
        do {
            scenario = try Scenario.load(path: file)
        } catch {
            writeToStandardError("shuttle: \(file): \(error)\n")
            throw ExitCode(2)
        }
        let report = Replay.run(scenario, checkInvariants: !noInvariants)
        if let difference = report.firstDifference {
            print("\(file): the model decides differently at \(difference)")
            throw ExitCode(1)
        }
        if let (step, violation) = report.violation {
            print("\(file): invariant \(violation.invariant.rawValue) broken at step \(step): \(violation.detail)")
            if let note = scenario.note { print("  recorded as: \(note)") }
            throw ExitCode(1)
        }
        print(
            "\(file): \(report.steps) steps replayed, every decision the same\(noInvariants ? "" : ", every invariant holds") (\(scenario.source), seed \(scenario.seed))"
        )
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}

/// `value` with two decimals, as `%.2f`.
func twoDecimals(_ value: Double) -> String {
    let hundredths = Int((max(0, value) * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100)." + (fraction < 10 ? "0" : "") + String(fraction)
}
