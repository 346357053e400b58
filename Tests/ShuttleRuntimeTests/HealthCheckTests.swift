import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("Health checks over real sockets")
struct HealthCheckTests {
    @Test("a backend whose checks fail `fall` times takes no new clients, and returns after `rise` successes")
    func fallAndRise() async throws {
        let proxy = ProxyHarness()
        let a = try await TestBackend.start(.name("a"), group: proxy.group)
        let b = try await TestBackend.start(.name("b"), group: proxy.group)
        // a's health is checked on a port of its own that the test opens and closes.
        var checkPort = try await TestBackend.start(.echo, group: proxy.group)
        let checkPortNumber = checkPort.localAddress!.port!
        var service = tcpService(
            "hc",
            backends: [
                backend("a", port: a.localAddress!.port!, checkPort: checkPortNumber),
                backend("b", port: b.localAddress!.port!),
            ])
        service.checkInterval = 50
        service.fall = 2
        service.rise = 2
        try await proxy.apply(Config(services: [service]))
        #expect(await eventually { (proxy.driver.read { $0.stats(service: "hc", backend: "a")?.checkSuccess } ?? 0) >= 1 })

        // Closed, and held (refusing) while the checks keep dialling it.
        try await checkPort.close()
        try await rebinding { try TestBackend.refuse(port: checkPortNumber) }
        #expect(await eventually { proxy.driver.read { $0.isUp(service: "hc", backend: "a") } == false })
        let fails = proxy.driver.read { $0.stats(service: "hc", backend: "a")?.checkFail } ?? 0
        #expect(fails >= 2)
        let port = try proxy.port(of: "hc")
        for _ in 0..<4 {
            #expect(try await nameThroughProxy(port: port, group: proxy.group) == "b")
        }

        TestBackend.release(refusingPort: checkPortNumber)
        checkPort = try await rebinding { try await TestBackend.start(.echo, group: proxy.group, port: checkPortNumber) }
        #expect(await eventually { proxy.driver.read { $0.isUp(service: "hc", backend: "a") } == true })
        var names: Set<String> = []
        for _ in 0..<4 { names.insert(try await nameThroughProxy(port: port, group: proxy.group)) }
        #expect(names == ["a", "b"])
        // The service first: its checks dial every port here until it goes.
        try await proxy.apply(Config(services: []))
        try await checkPort.close()
        try await a.close()
        try await b.close()
        await proxy.shutdown()
    }
}
