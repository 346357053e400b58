import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

/// Answers large enough that the epoll relay splices their bodies through
/// a pipe (`HTTPRelayConnection.spliceThreshold`), beside small ones that
/// it copies; the NIO path runs them too.
@Suite("HTTP virtual hosts: large answers")
struct LargeAnswerTests {
    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map(TestHTTPBackend.patternByte(at:)) }

    @Test("large and small answers on one connection arrive byte for byte, counted, on one backend connection")
    func byteForByte() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.patterned, group: harness.group)
        try await harness.apply([vhostService("big", hosts: ["big.test"], backends: [backend("b", server)])])
        let connection = try await harness.connect()
        let sizes = [1_000_000, 100, 40_000, 33_000, 2_000_000, 70_000, 0, 300_000]
        for size in sizes {
            try await connection.send(HTTPRequestText.make("GET", "/bytes/\(size)", host: "big.test"))
            let response = try await connection.readResponse(timeout: .seconds(60))
            #expect(response.status == 200)
            #expect(response.header("content-length") == String(size))
            #expect(response.body.count == size)
            #expect(response.body == Self.pattern(size), "the answer of \(size) bytes differs")
        }
        // The backend's connection carried every answer: a spliced body ends
        // where its length says and leaves the connection reusable.
        #expect(server.connections == 1)
        #expect(await eventually { harness.stats("big")?.received == sizes.reduce(0, +) })
        #expect(await eventually { harness.logLines().count == sizes.count })
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("bytes a backend sends after a large answer's body are never taken for the next answer")
    func bytesAfterTheBody() async throws {
        let harness = try await HTTPHarness.start()
        let stale = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"
        let server = try await TestHTTPBackend.start(.patternedWithExtra(stale), group: harness.group)
        try await harness.apply([vhostService("big", hosts: ["big.test"], backends: [backend("b", server)])])
        let connection = try await harness.connect()
        // Answers small enough to arrive with what follows them in one
        // segment, so that no later readiness event tells of the extra bytes.
        let sizes = [60_000, 100, 55_000, 50_000, 0, 60_000]
        for size in sizes {
            try await connection.send(HTTPRequestText.make("GET", "/bytes/\(size)", host: "big.test"))
            let response = try await connection.readResponse(timeout: .seconds(60))
            #expect(response.body == Self.pattern(size), "answer of \(size) bytes: got \(response.body.count) bytes")
        }
        // Every connection that carried an answer was left dirty: none was reused.
        #expect(server.connections == sizes.count)
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("a backend that dies in the middle of a large answer: the client gets all it sent, then the close")
    func truncated() async throws {
        let harness = try await HTTPHarness.start()
        let sent = 300_000
        let server = try await TestHTTPBackend.start(
            .truncated(declared: 2_000_000, sent: String(repeating: "p", count: sent)), group: harness.group)
        try await harness.apply([vhostService("t", hosts: ["t.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        try await connection.send(HTTPRequestText.make(host: "t.test"))
        #expect(await connection.waitForClose(timeout: .seconds(60)))
        let text = connection.text
        #expect(text.hasPrefix("HTTP/1.1 200"))
        let body = text.split(separator: "\r\n\r\n", maxSplits: 1).last ?? ""
        #expect(body.utf8.count == sent)
        #expect(body.utf8.allSatisfy { $0 == UInt8(ascii: "p") })
        #expect(await eventually { harness.stats("t")?.httpErrors == 1 })
        #expect(await eventually { harness.backendStats("t", "a")?.httpActive == 0 })
        #expect(await eventually { harness.logLines().contains { $0.contains("status=200") && !$0.hasSuffix("err=\n") } })
        await server.close()
        await harness.shutdown()
    }

    @Test("a client that leaves in the middle of a large answer: its backend connection is closed, the next client is served")
    func clientLeaves() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.patterned, group: harness.group)
        try await harness.apply([vhostService("big", hosts: ["big.test"], backends: [backend("b", server)])])
        // This client reads nothing: the proxy fills its socket and stops.
        let leaving = try await StreamingClient.connect(port: harness.httpPort, group: harness.group, autoRead: false)
        try await leaving.send(HTTPRequestText.make("GET", "/bytes/20000000", host: "big.test"))
        #expect(await eventually { server.openConnections == 1 })
        await leaving.close()
        #expect(await eventually(timeout: .seconds(30)) { server.openConnections == 0 })
        #expect(await eventually { harness.backendStats("big", "b")?.httpActive == 0 })
        let next = try await harness.connect()
        try await next.send(HTTPRequestText.make("GET", "/bytes/200000", host: "big.test"))
        let response = try await next.readResponse(timeout: .seconds(60))
        #expect(response.body == Self.pattern(200_000))
        await next.close()
        await server.close()
        await harness.shutdown()
    }
}
