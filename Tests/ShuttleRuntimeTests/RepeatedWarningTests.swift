import Logging
import NIOConcurrencyHelpers
import NIOCore
import ShuttleModel
@testable import ShuttleRuntime
import ShuttleTestSupport
import Testing

/// A logger whose lines (text format, info and up) are collected in
/// `lines`, once its output is flushed.
func collectingLogger(_ lines: NIOLockedValueBox<[String]>) -> (Logger, LogOutput) {
    let output = LogOutput(gatherTime: .zero) { text in
        lines.withLockedValue { $0.append(contentsOf: text.split(separator: "\n").map(String.init)) }
    }
    var logger = Logger(label: "test") { ShuttleLogHandler(label: $0, format: .text, output: output) }
    logger.logLevel = .info
    return (logger, output)
}

@Suite("Repeated warnings: at most one a second per kind, with how many were held back")
struct RepeatedWarningTests {
    @Test func oneWarningPerKeyASecond() async {
        let proxy = ProxyHarness()
        let started = ContinuousClock.now
        #expect(proxy.driver.shouldLog("a") == (true, 0))
        var said = 0
        for _ in 0..<50 where proxy.driver.shouldLog("a").say { said += 1 }
        // Another second may pass on a busy machine: one more line each.
        #expect(said <= Int((ContinuousClock.now - started).components.seconds))
        #expect(proxy.driver.shouldLog("b") == (true, 0), "another kind has its own limit")
        await proxy.shutdown()
    }

    @Test(
        "clients of a backend that refuses make one 'backend connect failed' line a second, not one each",
        arguments: TCPRelay.allCases)
    func connectFailuresAreLimited(relay: TCPRelay) async throws {
        let lines = NIOLockedValueBox<[String]>([])
        let (logger, output) = collectingLogger(lines)
        let proxy = ProxyHarness(relay: relay, logger: logger)
        let dead = try await TestBackend.refusingPort(group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("dead", backends: [backend("a", port: dead)])]))
        let port = try proxy.port(of: "dead")
        let started = ContinuousClock.now
        let clients = 40
        for _ in 0..<clients {
            let client = try await TCPClient.connect(port: port, group: proxy.group)
            #expect(await client.waitForClose(), "the proxy closes a client it found no backend for")
            await client.close()
        }
        let seconds = (ContinuousClock.now - started).components.seconds
        await proxy.shutdown()
        output.flush()
        let said = lines.withLockedValue { $0 }
        let failures = said.filter { $0.contains("backend connect failed") }
        let closes = said.filter { $0.contains("client closed without a backend") }
        #expect(failures.count >= 1 && failures.count <= Int(seconds) + 1, "\(failures)")
        #expect(closes.count >= 1 && closes.count <= Int(seconds) + 1, "\(closes)")
        #expect(failures.allSatisfy { $0.contains("held_back=") && $0.contains("backend=a") })
    }
}
