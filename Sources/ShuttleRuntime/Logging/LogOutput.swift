import Dispatch
import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How log lines look: the original's text (and logfmt access lines), or
/// one JSON object per line.
public enum LogFormat: String, Sendable, CaseIterable {
    case text, json
}

/// Where log lines go: standard error, written by a queue of its own so
/// that a slow reader of standard error never stalls an event loop. The
/// first line handed over wakes the queue `gatherTime` later, and every
/// line handed over meanwhile goes out in the same write: under load one
/// wake-up and one system call carry hundreds of lines. (Waking the queue
/// for each line cost an HTTP request two context switches and a write,
/// a fifth of its CPU time.) Past a backlog, lines are dropped and the drop
/// is reported once it clears.
public final class LogOutput: Sendable {
    public static let standardError = LogOutput { FileWrites.writeToStandardError($0) }

    let queue = DispatchQueue(label: "shuttle.log-output")
    let state = NIOLockedValueBox(Pending())
    let sink: @Sendable (String) -> Void
    let gatherTime: DispatchTimeInterval
    static let maximumBacklog = 10_000
    /// And at most this many bytes: ten thousand lines of 64 KiB URLs
    /// would be 640 MiB.
    static let maximumBacklogBytes = 16 << 20

    struct Pending {
        /// Lines not yet written, each with its newline.
        var text: [UInt8] = []
        var lines = 0
        var dropped = 0
        /// A drain is scheduled or running: new lines join it.
        var draining = false
    }

    /// `sink` gets one or more whole lines at a time, on the queue; lines
    /// wait at most `gatherTime` (plus the writes before them).
    public init(gatherTime: Duration = .milliseconds(20), sink: @escaping @Sendable (String) -> Void) {
        let (seconds, attoseconds) = gatherTime.components
        self.gatherTime = .microseconds(Int(seconds) * 1_000_000 + Int(attoseconds / 1_000_000_000_000))
        self.sink = sink
    }

    /// Hands over one line (with its newline).
    public func write(_ line: String) {
        append { $0.append(contentsOf: line.utf8) }
    }

    /// Hands over one line (with its newline) that `fill` appends to the
    /// pending bytes, under the lock: the line needs no buffer of its own.
    public func append(_ fill: (inout [UInt8]) -> Void) {
        let startDrain = state.withLockedValue { s -> Bool in
            guard s.lines < Self.maximumBacklog, s.text.count < Self.maximumBacklogBytes else {
                s.dropped += 1
                return false
            }
            fill(&s.text)
            s.lines += 1
            guard !s.draining else { return false }
            s.draining = true
            return true
        }
        if startDrain { scheduleDrain() }
    }

    private func scheduleDrain() {
        queue.asyncAfter(deadline: .now() + gatherTime) { self.drain() }
    }

    /// Writes what gathered; lines that come during the write are gathered
    /// for another `gatherTime`.
    private func drain() {
        writePending()
        let more = state.withLockedValue { s -> Bool in
            if s.lines > 0 || s.dropped > 0 { return true }
            s.draining = false
            return false
        }
        if more { scheduleDrain() }
    }

    /// Writes every line handed over so far (on the queue).
    private func writePending() {
        let (text, dropped) = state.withLockedValue { s -> ([UInt8], Int) in
            defer {
                s.text = []
                s.lines = 0
                s.dropped = 0
            }
            return (s.text, s.dropped)
        }
        if !text.isEmpty { sink(String(decoding: text, as: UTF8.self)) }
        if dropped > 0 { sink("shuttle: \(dropped) log lines dropped while standard error was slow\n") }
    }

    /// Writes every line handed over so far, and waits until they are written.
    public func flush() { queue.sync { writePending() } }
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
            output.write(JSONLine.object(object.map { ($0.key, .string($0.value)) }) + "\n")
        }
    }

    /// Now in UTC, ISO 8601 with milliseconds: `2026-11-29T10:54:32.874Z`.
    /// Formatted by hand: Foundation's date formatting loads ICU, a few
    /// MiB of the daemon's memory for one format.
    static func timestamp() -> String { timestamp(unixNanoseconds: wallClockNanoseconds()) }

    static func wallClockNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    static func timestamp(unixNanoseconds: Int64) -> String {
        let milliseconds = unixNanoseconds.quotientAndRemainder(dividingBy: 1_000_000).quotient
        let (seconds, millisecond) = milliseconds.quotientAndRemainder(dividingBy: 1_000)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2)
        bytes.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2)
        bytes.append(UInt8(ascii: "."))
        digits(Int(millisecond), 3)
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
