import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("TCP proxying over real sockets")
struct TCPProxyTests {
    @Test("bytes make a round trip through a service", arguments: TCPRelay.allCases)
    func roundTrip(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let echo = try await TestBackend.start(.echo, group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("echo", backends: [backend("a", port: echo.localAddress!.port!)])]))
        let client = try await TCPClient.connect(port: try proxy.port(of: "echo"), group: proxy.group)
        try await client.send("hello shuttle")
        #expect(await client.waitFor { $0 == "hello shuttle" } == "hello shuttle")
        await client.close()
        #expect(await eventually { proxy.stats("echo")?.active == 0 && proxy.stats("echo")?.connections == 1 })
        let stats = try #require(proxy.stats("echo"))
        #expect(stats.sent == 13)
        #expect(stats.received == 13)
        try await echo.close()
        await proxy.shutdown()
    }

    @Test("weighted round robin as seen by real connections follows the original's sequence", arguments: TCPRelay.allCases)
    func weightedRoundRobin(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        var backends: [BackendConfig] = []
        var servers: [any Channel] = []
        for (name, weight) in [("a", 2), ("b", 1), ("c", 3)] {
            let server = try await TestBackend.start(.name(name), group: proxy.group)
            servers.append(server)
            backends.append(backend(name, port: server.localAddress!.port!, weight: weight))
        }
        try await proxy.apply(Config(services: [tcpService("rr", backends: backends)]))
        let port = try proxy.port(of: "rr")
        var seen: [String] = []
        for _ in 0..<12 { seen.append(try await nameThroughProxy(port: port, group: proxy.group)) }
        #expect(seen == ["a", "a", "b", "c", "c", "c", "a", "a", "b", "c", "c", "c"])
        for server in servers { try await server.close() }
        await proxy.shutdown()
    }

    @Test("least connections sends new clients to the backend with fewer open connections", arguments: TCPRelay.allCases)
    func leastConnections(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let a = try await TestBackend.start(.name("a"), group: proxy.group)
        let b = try await TestBackend.start(.name("b"), group: proxy.group)
        try await proxy.apply(
            Config(services: [
                tcpService("lc", balance: "LC", backends: [backend("a", port: a.localAddress!.port!), backend("b", port: b.localAddress!.port!)])
            ]))
        let port = try proxy.port(of: "lc")
        // Four long-lived connections spread two and two.
        var held: [TCPClient] = []
        var names: [String] = []
        for _ in 0..<4 {
            let client = try await TCPClient.connect(port: port, group: proxy.group)
            names.append(String(await client.waitFor { $0.contains("\n") }.prefix { $0 != "\n" }))
            held.append(client)
        }
        #expect(names.filter { $0 == "a" }.count == 2)
        #expect(names.filter { $0 == "b" }.count == 2)
        // Close a's two: the next two go to a.
        for (client, name) in zip(held, names) where name == "a" { await client.close() }
        #expect(await eventually { proxy.driver.read { $0.stats(service: "lc", backend: "a")?.active } == 0 })
        var next: [String] = []
        for _ in 0..<2 {
            let client = try await TCPClient.connect(port: port, group: proxy.group)
            next.append(String(await client.waitFor { $0.contains("\n") }.prefix { $0 != "\n" }))
            held.append(client)
        }
        #expect(next == ["a", "a"])
        for client in held { await client.close() }
        try await a.close()
        try await b.close()
        await proxy.shutdown()
    }

    @Test("a refused connect fails over to the next backend and counts an error", arguments: TCPRelay.allCases)
    func failoverOnRefusedConnect(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let dead = try await TestBackend.refusingPort(group: proxy.group)
        let live = try await TestBackend.start(.name("live"), group: proxy.group)
        try await proxy.apply(
            Config(services: [tcpService("f", backends: [backend("a-dead", port: dead), backend("b-live", port: live.localAddress!.port!)])]))
        let port = try proxy.port(of: "f")
        for _ in 0..<4 {
            #expect(try await nameThroughProxy(port: port, group: proxy.group) == "live")
        }
        let errors = proxy.driver.read { $0.stats(service: "f", backend: "a-dead")?.errors } ?? 0
        #expect(errors >= 2)
        try await live.close()
        await proxy.shutdown()
    }

    @Test("a client is closed when no backend connects", arguments: TCPRelay.allCases)
    func closedWhenNoBackendConnects(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let dead = try await TestBackend.refusingPort(group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("none", backends: [backend("a", port: dead)])]))
        let client = try await TCPClient.connect(port: try proxy.port(of: "none"), group: proxy.group)
        #expect(await client.waitForClose())
        #expect(await eventually { proxy.driver.read { $0.openConnections } == 0 })
        await proxy.shutdown()
    }

    @Test("a client that half-closes still receives the backend's whole answer", arguments: TCPRelay.allCases)
    func halfCloseFromClient(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let server = try await TestBackend.start(.answerOnEOF, group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("h", backends: [backend("a", port: server.localAddress!.port!)])]))
        let client = try await TCPClient.connect(port: try proxy.port(of: "h"), group: proxy.group)
        try await client.send("question")
        try await client.shutdownWrite()
        #expect(await client.waitFor { $0 == "got:question" } == "got:question")
        #expect(await client.waitForClose())
        try await server.close()
        await proxy.shutdown()
    }

    @Test("bytes and the end of input arriving in one read both reach the backend", arguments: TCPRelay.allCases)
    func dataWithHalfCloseInOneRead(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let server = try await TestBackend.start(.answerOnEOF, group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("h", backends: [backend("a", port: server.localAddress!.port!)])]))
        let port = try proxy.port(of: "h")
        let payload = String(repeating: "x", count: 512)
        for _ in 0..<30 {
            let client = try await TCPClient.connect(port: port, group: proxy.group)
            // Written and half-closed back to back, so that the proxy tends
            // to read the bytes and the FIN together.
            client.channel.write(ByteBuffer(string: payload), promise: nil)
            client.channel.close(mode: .output, promise: nil)
            client.channel.flush()
            #expect(await client.waitFor { $0 == "got:" + payload } == "got:" + payload)
            await client.close()
        }
        try await server.close()
        await proxy.shutdown()
    }

    @Test("a slow reader stops the backend instead of filling the proxy's memory", arguments: TCPRelay.allCases)
    func slowReaderIsBounded(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let written = NIOLockedValueBox(0)
        let total = 256 * 1024 * 1024
        let server = try await TestBackend.start(.flood(total: total, written: written), group: proxy.group)
        try await proxy.apply(Config(services: [tcpService("slow", backends: [backend("a", port: server.localAddress!.port!)])]))
        // This client never reads.
        let client = try await TCPClient.connect(port: try proxy.port(of: "slow"), group: proxy.group, autoRead: false)
        // Wait until the backend's writes stall.
        let stalledAt = try await writesStalled(written)
        // Kernel socket buffers on both hops plus a few proxy buffers: far
        // below what the backend wanted to send.
        #expect(stalledAt < 48 * 1024 * 1024, "backend wrote \(stalledAt) bytes to a client that reads nothing")
        #expect(stalledAt > 0)
        await client.close()
        try await server.close()
        await proxy.shutdown()
    }

    @Test("inactivity past client_timeout closes the connection", arguments: TCPRelay.allCases)
    func clientTimeout(relay: TCPRelay) async throws {
        let proxy = ProxyHarness(relay: relay)
        let echo = try await TestBackend.start(.echo, group: proxy.group)
        var service = tcpService("idle", backends: [backend("a", port: echo.localAddress!.port!)])
        service.clientTimeout = 500
        try await proxy.apply(Config(services: [service]))
        let client = try await TCPClient.connect(port: try proxy.port(of: "idle"), group: proxy.group)
        try await client.send("x")
        // The echo may or may not beat the timeout on a busy machine; the
        // connection must be placed, and then closed for being idle.
        #expect(await eventually { proxy.stats("idle")?.connections == 1 })
        #expect(await client.waitForClose())
        #expect(await eventually { proxy.stats("idle")?.active == 0 })
        try await echo.close()
        await proxy.shutdown()
    }
}
