import Dispatch
import FoundationEssentials
import NIOConcurrencyHelpers
import ShuttleModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `-record FILE` recording: every event the model handles, with the
/// driver's clock and the actions it answered, as JSON lines that
/// `shuttle sim replay` reads (the simulator's scenario format). The header
/// line carries the model's seed and settings, so a replay makes the same model.
///
/// The driver calls `record` while it holds the model's lock, so lines come
/// in the order the model saw the events; encoding and writing happen in
/// that order on a queue of their own, off the event loops.
public final class RecordFile: Sendable {
    public let path: String
    let fd: Int32
    let queue = DispatchQueue(label: "shuttle.record-file")
    let clock = NIOLockedValueBox<(@Sendable () -> Instant)?>(nil)

    /// Creates (or truncates) the file and writes its header.
    public init(path: String, seed: UInt64, settings: ProxySettings) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RecordFileError(path: path) }
        var header = (try? Self.encoder.encode(Header(seed: seed, settings: settings))) ?? Data()
        header.append(0x0a)
        write(header)
    }

    /// Where the timestamps come from: the driver's clock.
    public func useClock(_ now: @escaping @Sendable () -> Instant) {
        clock.withLockedValue { $0 = now }
    }

    /// Records one event and its actions.
    public func record(_ event: Event, _ actions: [Action]) {
        let time = clock.withLockedValue { $0 }?().nanoseconds ?? 0
        queue.async {
            guard var line = try? Self.encoder.encode(Line(t: time, event: event, actions: actions)) else { return }
            line.append(0x0a)
            self.write(line)
        }
    }

    /// Waits until every line recorded so far is written.
    public func flush() {
        queue.sync {}
        fsync(fd)
    }

    private func write(_ data: Data) {
        _ = data.withUnsafeBytes { FileWrites.writeAll(fd, $0) }
    }

    deinit { close(fd) }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    struct Header: Encodable {
        var format = "shuttle-scenario"
        var version = 1
        var seed: UInt64
        var settings: ProxySettings
        var source = "daemon"
    }

    struct Line: Encodable {
        var t: UInt64
        var event: Event
        var actions: [Action]
    }
}

struct RecordFileError: Error, CustomStringConvertible {
    var path: String
    var description: String { "cannot create the recording \(path)" }
}
