import Foundation
import NIOConcurrencyHelpers
@testable import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("Log output: lines gathered and written by one writer")
struct LogOutputTests {
    @Test("lines from many threads all arrive, whole and in each writer's order")
    func everyLineArrivesWhole() async throws {
        let received = NIOLockedValueBox<[String]>([])
        let writes = NIOLockedValueBox(0)
        let output = LogOutput { text in
            #expect(text.hasSuffix("\n"), "the sink gets whole lines only")
            writes.withLockedValue { $0 += 1 }
            received.withLockedValue { $0.append(contentsOf: text.split(separator: "\n").map(String.init)) }
        }
        let writers = 4
        let perWriter = 2_000  // below the backlog, so none is dropped
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for i in 0..<perWriter { output.write("writer=\(writer) line=\(i)\n") }
                }
            }
        }
        output.flush()
        let lines = received.withLockedValue { $0 }
        #expect(lines.count == writers * perWriter)
        for writer in 0..<writers {
            let own = lines.filter { $0.hasPrefix("writer=\(writer) ") }
            #expect(own == (0..<perWriter).map { "writer=\(writer) line=\($0)" })
        }
        #expect(writes.withLockedValue { $0 } <= lines.count)
    }

    @Test("lines handed over within the gathering time go out in one write")
    func linesAreGathered() {
        let writes = NIOLockedValueBox<[String]>([])
        // Longer than the test: only the flush writes.
        let output = LogOutput(gatherTime: .seconds(600)) { text in writes.withLockedValue { $0.append(text) } }
        for i in 0..<300 { output.write("line \(i)\n") }
        #expect(writes.withLockedValue { $0 }.isEmpty)
        output.flush()
        #expect(writes.withLockedValue { $0 } == [(0..<300).map { "line \($0)\n" }.joined()])
        output.write("later\n")
        output.flush()
        #expect(writes.withLockedValue { $0 }.last == "later\n")
    }

    /// Writes with `write` while the writer is stuck on the line before
    /// (standard error slow); every line that came out once it is free.
    static func writtenPastAStuckWriter(_ write: (LogOutput) -> Void) async -> [String] {
        let gate = NIOLockedValueBox(false)
        let received = NIOLockedValueBox<[String]>([])
        let output = LogOutput { text in
            // The first write blocks until the test has overfilled the backlog.
            while !gate.withLockedValue({ $0 }) { usleep(1_000) }
            received.withLockedValue { $0.append(contentsOf: text.split(separator: "\n").map(String.init)) }
        }
        output.write("first\n")
        // Wait until the drain has taken "first" and is stuck in the sink.
        #expect(await eventually { output.state.withLockedValue { $0.lines == 0 && $0.draining } })
        write(output)
        gate.withLockedValue { $0 = true }
        output.flush()
        let lines = received.withLockedValue { $0 }
        #expect(lines.first == "first")
        return lines
    }

    @Test("past the backlog, lines are dropped and the drop is reported")
    func dropsPastTheBacklog() async throws {
        let extra = 5
        let lines = await Self.writtenPastAStuckWriter { output in
            for i in 0..<(LogOutput.maximumBacklog + extra) { output.write("line \(i)\n") }
        }
        #expect(lines.filter { $0.hasPrefix("line ") }.count == LogOutput.maximumBacklog)
        #expect(lines.last == "shuttle: \(extra) log lines dropped while standard error was slow")
    }

    @Test("past the backlog's bytes, long lines are dropped too")
    func dropsPastTheBacklogBytes() async throws {
        let long = String(repeating: "u", count: 1 << 20) + "\n"
        let kept = LogOutput.maximumBacklogBytes / long.utf8.count + 1
        let lines = await Self.writtenPastAStuckWriter { output in
            for _ in 0..<(kept + 3) { output.write(long) }
        }
        #expect(lines.filter { $0.hasPrefix("uuu") }.count == kept)
        #expect(lines.last == "shuttle: 3 log lines dropped while standard error was slow")
    }

    @Test("an empty write does not stall the lines after it")
    func emptyWrite() async throws {
        let received = NIOLockedValueBox("")
        let output = LogOutput { text in received.withLockedValue { $0 += text } }
        output.write("")
        output.flush()
        output.write("after\n")
        output.flush()
        #expect(received.withLockedValue { $0 } == "after\n")
    }

    @Test("log times are UTC, ISO 8601 with milliseconds (truncated)", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1_796_000_000_123_456_789, "2026-11-30T00:53:20.123Z"),
        (951_782_400_999_000_000, "2000-02-29T00:00:00.999Z"),
    ])
    func timestamps(nanoseconds: Int64, text: String) {
        #expect(ShuttleLogHandler.timestamp(unixNanoseconds: nanoseconds) == text)
    }

    @Test("a log time is now's")
    func timestampIsNow() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let before = Date()
        let parsed = formatter.date(from: ShuttleLogHandler.timestamp())
        #expect(parsed != nil)
        if let parsed { #expect(abs(parsed.timeIntervalSince(before)) < 60) }
    }

    @Test("access log durations have six decimals, as the original's %.6f")
    func durations() {
        #expect(AccessLog.seconds(0) == "0.000000")
        #expect(AccessLog.seconds(1.5) == "1.500000")
        #expect(AccessLog.seconds(0.000_001_6) == "0.000002")
        #expect(AccessLog.seconds(12.345_678) == "12.345678")
        #expect(AccessLog.seconds(3_600.25) == "3600.250000")
    }
}
