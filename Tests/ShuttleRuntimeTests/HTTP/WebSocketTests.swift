import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: Connection: Upgrade (WebSocket)")
struct WebSocketTests {
    static let upgrade = [
        ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]

    @Test("after the backend's 101 the connection is a two-way byte stream: a WebSocket echo works")
    func echo() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.webSocketEcho, group: harness.group)
        try await harness.apply([vhostService("ws", hosts: ["ws.test"], backends: [backend("w", server)])])
        let connection = try await harness.connect()
        try await connection.send(HTTPRequestText.make("GET", "/chat", host: "ws.test", headers: Self.upgrade))
        let response = try await connection.readResponse()
        #expect(response.status == 101)
        #expect(response.header("upgrade")?.lowercased() == "websocket")
        #expect(response.header("connection")?.lowercased() == "upgrade")
        #expect(response.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        // The backend's first frame came right behind its 101.
        #expect(await connection.waitForBytes(24))
        var received = connection.takeBytes()
        #expect(WebSocketFrames.parse(received)?.0 == "hello from the backend")
        received.removeAll()
        for message in ["one", "two", String(repeating: "x", count: 1000)] {
            try await connection.send(WebSocketFrames.text(message, masked: true))
            let expected = WebSocketFrames.text("echo: " + message, masked: false)
            #expect(await connection.waitForBytes(expected.count))
            #expect(connection.takeBytes() == expected)
        }
        // The backend saw the upgrade headers, hop-by-hop or not.
        let head = try #require(server.requests.first)
        #expect(head.headers["upgrade"].first == "websocket")
        #expect(head.headers["connection"].first?.lowercased() == "upgrade")
        #expect(head.headers["x-forwarded-for"].first == "127.0.0.1")
        // Closing one side closes the other.
        await connection.close()
        #expect(await eventually { harness.driver.read { $0.openConnections } == 0 })
        await server.close()
        await harness.shutdown()
    }

    @Test("an upgrade the backend refuses is answered and the connection then closed")
    func refusedUpgrade() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("plain"), group: harness.group)
        try await harness.apply([vhostService("ws", hosts: ["ws.test"], backends: [backend("p", server)])])
        let connection = try await harness.connect()
        try await connection.send(HTTPRequestText.make("GET", "/chat", host: "ws.test", headers: Self.upgrade))
        let response = try await connection.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "plain")
        #expect(await connection.waitForClose())
        await server.close()
        await harness.shutdown()
    }
}
