import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("Live changes leave unrelated traffic alone")
struct LiveChangeTests {
    @Test("replacing a backend keeps an existing connection through it open and working", arguments: TCPRelay.allCases)
    func replacingBackendKeepsConnection(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let old = try await TestBackend.start(.echo, group: proxy.group)
        let new = try await TestBackend.start(.name("new"), group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("s", backends: [backend("a", port: old.localAddress!.port!)])]))
        let port = try proxy.port(of: "s")
        let client = try await TCPClient.connect(port: port, group: proxy.group)
        try await client.send("one ")
        #expect(await client.waitFor { $0 == "one " } == "one ")
        let oldID = proxy.driver.read { $0.backendID(service: "s", backend: "a") }

        try await proxy.apply(.upsertBackend(service: "s", name: "a", backend("a", port: new.localAddress!.port!)))
        #expect(proxy.driver.read { $0.backendID(service: "s", backend: "a") } != oldID)
        try await client.send("two")
        #expect(await client.waitFor { $0 == "one two" } == "one two")
        #expect(try await nameThroughProxy(port: port, group: proxy.group) == "new")
        // The old connection still counts as active on the service (the
        // name-reading one closes on its own).
        #expect(await eventually { proxy.stats("s")?.active == 1 })
        await client.close()
        #expect(await eventually { proxy.stats("s")?.active == 0 })
        try await old.close()
        try await new.close()
        await proxy.shutdown()
    }

    @Test("removing an unrelated service, and an update that changes nothing, disturb no connection", arguments: TCPRelay.allCases)
    func unrelatedChanges(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let echo = try await TestBackend.start(.echo, group: proxy.group)
        let config = Config(services: [
            tcpService("keep", backends: [backend("a", port: echo.localAddress!.port!)]),
            tcpService("drop", backends: [backend("a", port: echo.localAddress!.port!)]),
        ])
        try await proxy.apply(config)
        let port = try proxy.port(of: "keep")
        let client = try await TCPClient.connect(port: port, group: proxy.group)
        try await client.send("a")
        #expect(await client.waitFor { $0 == "a" } == "a")
        try await proxy.apply(config)
        try await proxy.apply(.removeService(name: "drop"))
        #expect(try proxy.port(of: "keep") == port)
        try await client.send("b")
        #expect(await client.waitFor { $0 == "ab" } == "ab")
        #expect(!client.isClosed)
        await client.close()
        try await echo.close()
        await proxy.shutdown()
    }

    @Test("an update whose listener cannot be bound changes nothing", arguments: TCPRelay.allCases)
    func bindFailureChangesNothing(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let taken = try await TestBackend.start(.echo, group: proxy.group)
        let takenPort = taken.localAddress!.port!
        try await proxy.apply(Config(services: [tcpService("first", backends: [backend("a", port: takenPort)])]))
        let before = proxy.driver.read { $0.config }
        let update = Config(services: [
            tcpService("second", backends: [backend("a", port: takenPort)]),
            // (A backend elsewhere: one at its own address would be a loop, rejected before any bind.)
            ServiceConfig(name: "third", address: "127.0.0.1:\(takenPort)", backends: [backend("a", port: 9)]),
        ])
        let reply = try await proxy.driver.submit(.updateConfig(ConfigUpdate(update))).get()
        guard case .bindFailed(let service, let address, _, _) = reply else {
            Issue.record("expected a bind failure, got \(reply)")
            return
        }
        #expect(service == "third")
        #expect(address == "127.0.0.1:\(takenPort)")
        #expect(proxy.driver.read { $0.config } == before)
        #expect(proxy.driver.read { $0.listener(ofService: "second") } == nil)
        try await taken.close()
        await proxy.shutdown()
    }
}
