import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers

/// How log lines look: the original's text (and logfmt access lines), or
/// one JSON object per line.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// Where log lines go: standard error, written by a queue of its own so
/// that a slow reader of standard error never stalls an event loop. Lines
/// handed over while the queue is busy are gathered and written together:
/// under load one system call (and one wake-up of the queue) carries many
/// lines, not one each. Past a backlog, lines are dropped and the drop is
/// reported once it clears.
public final class LogOutput: Sendable {
    public static let standardError = LogOutput { FileHandle.standardError.write(Data($0.utf8)) }

    let queue = DispatchQueue(label: "shuttle.log-output")
    let state = NIOLockedValueBox(Pending())
    let sink: @Sendable (String) -> Void
    static let maximumBacklog = 10_000

    struct Pending {
        /// Lines not yet written, each with its newline.
        var text = ""
        var lines = 0
        var dropped = 0
        /// A drain is queued or running: new lines join it.
        var draining = false
    }

    /// `sink` gets one or more whole lines at a time.
    public init(sink: @escaping @Sendable (String) -> Void) {
        self.sink = sink
    }

    /// Hands over one line (with its newline).
    public func write(_ line: String) {
        let startDrain = state.withLockedValue { s -> Bool in
            guard s.lines < Self.maximumBacklog else {
                s.dropped += 1
                return false
            }
            s.text += line
            s.lines += 1
            guard !s.draining else { return false }
            s.draining = true
            return true
        }
        if startDrain { queue.async { self.drain() } }
    }

    /// Writes what is pending until nothing is.
    private func drain() {
        while true {
            let taken = state.withLockedValue { s -> (text: String, dropped: Int)? in
                guard s.lines > 0 || s.dropped > 0 else {
                    s.draining = false
                    return nil
                }
                defer { s = Pending(draining: true) }
                return (s.text, s.dropped)
            }
            guard let (text, dropped) = taken else { return }
            if !text.isEmpty { sink(text) }
            if dropped > 0 { sink("shuttle: \(dropped) log lines dropped while standard error was slow\n") }
        }
    }

    /// Waits until every line handed over so far is written.
    public func flush() { queue.sync {} }
}

/// A swift-log handler writing text or JSON lines through a `LogOutput`.
public struct ShuttleLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let format: LogFormat
    let output: LogOutput

    public init(label: String, format: LogFormat, output: LogOutput = .standardError) {
        self.label = label
        self.format = format
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let time = Self.timestamp()
        switch format {
        case .text:
            let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            output.write("\(time) \(event.level) \(label): \(fields.isEmpty ? "" : fields + " ")[\(event.source)] \(event.message)\n")
        case .json:
            var object: [String: String] = [:]
            for (key, value) in all { object[key] = "\(value)" }
            object["time"] = time
            object["level"] = event.level.rawValue
            object["label"] = label
            object["source"] = event.source
            object["message"] = "\(event.message)"
            output.write(Self.json(object) + "\n")
        }
    }

    static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    /// A flat JSON object of strings, keys sorted.
    static func json(_ object: [String: String]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
