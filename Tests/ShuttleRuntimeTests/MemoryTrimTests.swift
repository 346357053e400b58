import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("Memory: freed heap pages go back to the system")
struct MemoryTrimTests {
    #if canImport(Glibc)
    @Test("glibc's malloc_trim is found, and the repeated trim runs on its loop")
    func trimRuns() async throws {
        let trim = try #require(MemoryTrim.mallocTrim)
        // Free a burst of small blocks, then trim: the call works (1 when
        // it released memory, 0 when there was none to release).
        var blocks: [[UInt8]] = (0..<4_096).map { _ in [UInt8](repeating: 1, count: 4_000) }
        blocks.removeAll()
        #expect([0, 1].contains(trim(0)))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let runs = NIOLockedValueBox(0)
        let task = try #require(
            MemoryTrim.start(on: group.next(), every: .milliseconds(10)) { runs.withLockedValue { $0 += 1 } })
        #expect(await eventually { runs.withLockedValue { $0 } >= 3 })
        task.cancel()
        try await group.shutdownGracefully()
        #expect(blocks.isEmpty)
    }
    #endif
}
