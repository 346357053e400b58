import Foundation
import PropertyBased
import ShuttleModel
import ShuttleSim
import Testing

/// The scenarios recorded from real runs of the daemon (scripts/record-scenarios).
let fixtures: [String] = {
    let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/scenarios")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix(".jsonl") }.sorted().map { directory.appendingPathComponent($0).path }
}()

func traceOf(seed: UInt64, steps: Int) -> Scenario {
    var options = SimulationOptions(seed: seed, steps: steps)
    options.recordTrace = true
    let result = Simulation.run(options)
    return Scenario(seed: result.modelSeed, source: "sim", steps: result.trace ?? [])
}

@Suite struct ScenarioTests {
    @Test func thereAreAtLeastThreeRecordedScenarios() {
        #expect(fixtures.count >= 3, "\(fixtures)")
    }

    // Replaying a scenario recorded from the daemon gives every decision it recorded, and breaks no invariant.
    @Test(arguments: fixtures)
    func aRecordedScenarioReplays(_ path: String) throws {
        let scenario = try Scenario.load(path: path)
        #expect(scenario.source == "daemon")
        #expect(scenario.steps.count > 100)
        let report = Replay.run(scenario)
        #expect(report.firstDifference == nil, "\(report.firstDifference.map { "\($0)" } ?? "")")
        #expect(report.violation == nil, "\(report.violation.map { "step \($0.step): \($0.violation)" } ?? "")")
        #expect(report.replayed == scenario.steps.count)
    }

    @Test func replayReportsTheFirstDecisionThatDiffers() throws {
        var scenario = try Scenario.load(path: try #require(fixtures.first))
        let index = try #require(
            scenario.steps.firstIndex {
                if case .event(_, let actions, _) = $0.step { return actions.contains { if case .connectBackend = $0 { return true } else { return false } } }
                return false
            })
        guard case .event(let event, _, let expect) = scenario.steps[index].step else { return }
        scenario.steps[index].step = .event(event, actions: [], expect: expect)
        let report = Replay.run(scenario)
        #expect(report.firstDifference?.step == index + 1)
    }

    // Every step of a simulated run comes back from the JSON-lines format as it was.
    @Test func theFormatKeepsEveryStep() async throws {
        await propertyCheck(count: 4, input: Gen.uint64(in: 0...UInt64.max)) { seed in
            let scenario = traceOf(seed: seed, steps: 2_000)
            let decoded = try Scenario.decode(scenario.encoded())
            #expect(decoded == scenario)
        }
    }

    @Test func aSimulatedTraceReplaysWithTheSameDecisions() {
        let scenario = traceOf(seed: 11, steps: 5_000)
        let report = Replay.run(scenario)
        #expect(report.isClean, "\(report.firstDifference.map { "\($0)" } ?? "") \(report.violation.map { "\($0.violation)" } ?? "")")
    }

    @Test func aFailingTraceShrinksToAScenarioThatReplayReproduces() throws {
        // A valid change that the operator calls invalid, in the middle of a real run.
        var scenario = traceOf(seed: 5, steps: 3_000)
        var update = ConfigUpdate(global: Config(), httpsRedirectPresent: false, services: [])
        update.global.fall = 9
        let planted = TimedStep(
            time: scenario.steps[scenario.steps.count / 2].time,
            step: .event(.admin(RequestID(9_999), .updateConfig(update)), actions: [], expect: .invalid))
        scenario.steps.insert(planted, at: scenario.steps.count / 2)
        let shrunk = try #require(Shrinker.shrink(scenario, invariant: .invalidUpdate))
        #expect(shrunk.scenario.steps.count <= 3)
        let reread = try Scenario.decode(shrunk.scenario.encoded())
        let report = Replay.run(reread)
        #expect(report.firstDifference == nil)
        #expect(report.violation?.violation.invariant == .invalidUpdate)
    }
}
