#if os(Linux)
import NIOCore
import ShuttleModel
import ShuttleTestSupport
import Synchronization
import Testing

@testable import ShuttleRuntime

/// A relay loop's tasks (listener and service closes, resolved host names)
/// all run, also when the relay stops around them: a close waits for a task
/// on every loop.
/// A counter that closures on other threads can share.
private final class Count: Sendable {
    private let atomic = Atomic<Int>(0)
    func add() { atomic.wrappingAdd(1, ordering: .relaxed) }
    var value: Int { atomic.load(ordering: .relaxed) }
}

@Suite("Relay loops: every posted task runs")
struct SpliceLoopTests {
    @Test("tasks posted while a loop stops and after it ended all run")
    func tasksAroundTheEnd() async throws {
        let loop = try SpliceLoop()
        loop.start(name: "test-relay")
        let ran = Count()
        let posters = 4
        let each = 500
        await withTaskGroup(of: Void.self) { group in
            for poster in 0..<posters {
                group.addTask {
                    for index in 0..<each {
                        if poster == 0 && index == each / 2 { loop.stop() }
                        loop.post { ran.add() }
                    }
                }
            }
        }
        #expect(await eventually { loop.hasEnded })
        loop.post { ran.add() }
        #expect(await eventually { ran.value == posters * each + 1 })
        #expect(ran.value == posters * each + 1)
    }

    @Test("closing the listeners after the relay stopped completes")
    func closeAfterTheRelayStopped() async throws {
        // No traffic: the backends are never connected.
        let proxy = ProxyHarness(relay: .splice, udpRelay: .epoll)
        try await proxy.apply(
            Config(services: [
                tcpService("t", backends: [backend("a", port: 9)]),
                tcpService("u", backends: [backend("a", port: 9, network: "udp")], network: "udp"),
            ]))
        let loops = proxy.driver.spliceRelay.withLockedValue { $0?.loops } ?? []
        #expect(!loops.isEmpty)
        proxy.driver.shutdownRelay()
        // The loops end on their own threads; the closes come after.
        #expect(await eventually { loops.allSatisfy(\.hasEnded) })
        let closed = Count()
        proxy.driver.closeListeners().whenComplete { _ in closed.add() }
        #expect(await eventually(timeout: .seconds(20)) { closed.value == 1 })
        await proxy.shutdown()
    }
}
#endif
