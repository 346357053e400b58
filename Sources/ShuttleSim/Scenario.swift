import FoundationEssentials
import ShuttleModel

/// A recorded run of the model: the seed and settings it was made with and
/// every step, each event with the actions the model answered. Written by
/// the daemon's `-record` and by the fuzzer for a failure; `sim replay` reads it.
///
/// The file is JSON lines: a header line, then one line per step:
///
///     {"format":"shuttle-scenario","version":1,"seed":0,"source":"daemon"}
///     {"t":1200,"event":{"kind":"admin",...},"actions":[{"kind":"bindListener",...}]}
///     {"t":1500,"restart":{"seed":42}}
public struct Scenario: Sendable, Equatable {
    public var seed: UInt64
    public var settings: ProxySettings
    /// Who wrote it: `daemon` or `sim`.
    public var source: String
    /// Free text: what the scenario shows.
    public var note: String?
    public var steps: [TimedStep]

    public init(seed: UInt64, settings: ProxySettings = ProxySettings(), source: String, note: String? = nil, steps: [TimedStep]) {
        self.seed = seed
        self.settings = settings
        self.source = source
        self.note = note
        self.steps = steps
    }
}

/// A scenario file that cannot be read, and where.
public struct ScenarioError: Error, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "line \(line): \(reason)" }
}

/// The lines of the JSON-lines format.
enum ScenarioLine {
    static let format = "shuttle-scenario"

    struct Header: Codable {
        var format: String
        var version: Int
        var seed: UInt64
        var settings: ProxySettings?
        var source: String?
        var note: String?
    }

    struct Step: Codable {
        var t: UInt64
        var event: Event?
        var actions: [Action]?
        var expect: Expectation?
        var restart: Restart?
    }

    struct Restart: Codable {
        var seed: UInt64
    }
}

extension Scenario {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The header line (without its newline).
    public static func headerLine(seed: UInt64, settings: ProxySettings, source: String, note: String? = nil) -> Data {
        let header = ScenarioLine.Header(
            format: ScenarioLine.format, version: 1, seed: seed, settings: settings, source: source, note: note)
        return (try? encoder().encode(header)) ?? Data()
    }

    /// One step's line (without its newline).
    public static func line(_ step: TimedStep, encoder: JSONEncoder = Scenario.encoder()) -> Data {
        let line: ScenarioLine.Step
        switch step.step {
        case .event(let event, let actions, let expect):
            line = ScenarioLine.Step(t: step.time, event: event, actions: actions, expect: expect)
        case .restart(let seed):
            line = ScenarioLine.Step(t: step.time, restart: ScenarioLine.Restart(seed: seed))
        }
        return (try? encoder.encode(line)) ?? Data()
    }

    /// The whole file.
    public func encoded() -> Data {
        var data = Scenario.headerLine(seed: seed, settings: settings, source: source, note: note)
        data.append(0x0a)
        let encoder = Scenario.encoder()
        for step in steps {
            data.append(Scenario.line(step, encoder: encoder))
            data.append(0x0a)
        }
        return data
    }

    /// Reads a scenario file's content.
    public static func decode(_ data: Data) throws -> Scenario {
        let decoder = JSONDecoder()
        var lines = data.split(separator: 0x0a, omittingEmptySubsequences: false).enumerated().filter {
            !$0.element.allSatisfy { $0 == 0x20 || $0 == 0x0d || $0 == 0x09 }
        }[...]
        guard let first = lines.popFirst() else { throw ScenarioError(line: 1, reason: "the file is empty") }
        let header: ScenarioLine.Header
        do {
            header = try decoder.decode(ScenarioLine.Header.self, from: Data(first.element))
        } catch {
            throw ScenarioError(line: first.offset + 1, reason: "not a scenario header: \(error)")
        }
        guard header.format == ScenarioLine.format else {
            throw ScenarioError(line: first.offset + 1, reason: "format is \"\(header.format)\", not \"\(ScenarioLine.format)\"")
        }
        var steps: [TimedStep] = []
        for (offset, bytes) in lines {
            let line: ScenarioLine.Step
            do {
                line = try decoder.decode(ScenarioLine.Step.self, from: Data(bytes))
            } catch {
                throw ScenarioError(line: offset + 1, reason: "\(error)")
            }
            if let restart = line.restart {
                steps.append(TimedStep(time: line.t, step: .restart(seed: restart.seed)))
            } else if let event = line.event {
                steps.append(TimedStep(time: line.t, step: .event(event, actions: line.actions ?? [], expect: line.expect)))
            } else {
                throw ScenarioError(line: offset + 1, reason: "neither an event nor a restart")
            }
        }
        return Scenario(
            seed: header.seed, settings: header.settings ?? ProxySettings(), source: header.source ?? "unknown",
            note: header.note, steps: steps)
    }

    public static func load(path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScenarioError(line: 0, reason: "\(path) cannot be read")
        }
        return try decode(data)
    }

    public func write(path: String) throws {
        try encoded().write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
