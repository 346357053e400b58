import NIOConcurrencyHelpers
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

/// Request bodies large enough that the epoll relay splices them through a
/// pipe (`HTTPRelayConnection.uploadSpliceThreshold`), beside small ones
/// that it copies; the NIO path runs them too.
@Suite("HTTP virtual hosts: large request bodies")
struct LargeUploadTests {
    static func upload(_ size: Int, host: String) -> [UInt8] {
        Array(HTTPRequestText.make("PUT", "/up", host: host, headers: [("Content-Length", String(size))]).utf8)
            + (0..<size).map(TestHTTPBackend.patternByte(at:))
    }

    @Test("large and small uploads on one connection reach the backend byte for byte, counted, on one connection")
    func byteForByte() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.patternSink, group: harness.group)
        try await harness.apply([vhostService("up", hosts: ["up.test"], backends: [backend("b", server)])])
        let connection = try await harness.connect()
        let sizes = [2_000_000, 100, 70_000, 65_600, 0, 1_000_000, 30_000]
        for size in sizes {
            try await connection.send(Self.upload(size, host: "up.test"))
            let response = try await connection.readResponse(timeout: .seconds(60))
            #expect(response.status == 200)
            #expect(response.text == "received \(size) ok")
        }
        #expect(server.connections == 1)
        #expect(await eventually { harness.stats("up")?.sent == sizes.reduce(0, +) })
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("an answer that comes in the middle of a large upload reaches the client; the rest of the body is dropped")
    func answerDuringUpload() async throws {
        let harness = try await HTTPHarness.start()
        let early = try await TestHTTPBackend.start(.answerAtHead(413, body: "too large"), group: harness.group)
        try await harness.apply([vhostService("e", hosts: ["e.test"], backends: [backend("a", early)])])
        // Far more than can be on its way when the answer comes.
        let client = try await StreamingClient.connect(port: harness.httpPort, group: harness.group)
        let total = 1 << 30
        let head = HTTPRequestText.make("PUT", "/up", host: "e.test", headers: [("Content-Length", String(total))])
        try await client.upload(head: head, total: total)
        // More than the proxy drops for a client follows the answer: the connection ends.
        #expect(await eventually(timeout: .seconds(60)) { client.isClosed })
        #expect(client.prefix.hasPrefix("HTTP/1.1 413"))
        #expect(client.prefix.hasSuffix("too large"))
        #expect(client.written < total)
        #expect(harness.stats("e")?.httpErrors == 0)
        #expect(await eventually { early.openConnections == 0 })
        // The proxy goes on serving.
        let next = try await harness.connect()
        #expect(try await next.request("PUT", "/up", host: "e.test", body: "small").status == 413)
        await next.close()
        await client.close()
        await early.close()
        await harness.shutdown()
    }

    @Test("a client that leaves in the middle of a large upload: its backend connection is closed")
    func clientLeaves() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.sink, group: harness.group)
        try await harness.apply([vhostService("up", hosts: ["up.test"], backends: [backend("b", server)])])
        let client = try await StreamingClient.connect(port: harness.httpPort, group: harness.group)
        let total = 1 << 30
        let head = HTTPRequestText.make("POST", "/", host: "up.test", headers: [("Content-Length", String(total))])
        try await client.upload(head: head, total: total)
        #expect(await eventually { client.written > 4 * 1024 * 1024 })
        await client.close()
        #expect(await eventually(timeout: .seconds(30)) { server.openConnections == 0 })
        #expect(await eventually { harness.backendStats("up", "b")?.httpActive == 0 })
        #expect(await eventually { harness.logLines().contains { $0.contains("err=\"the client closed the connection\"") } }, "\(harness.logLines())")
        await server.close()
        await harness.shutdown()
    }
}
