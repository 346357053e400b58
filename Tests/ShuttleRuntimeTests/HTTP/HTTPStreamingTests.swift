import NIOConcurrencyHelpers
import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: bodies stream both ways")
struct HTTPStreamingTests {
    static let size = 64 * 1024 * 1024

    @Test("a large download passes through whole")
    func largeDownload() async throws {
        let harness = try await HTTPHarness.start()
        let written = NIOLockedValueBox(0)
        let server = try await TestHTTPBackend.start(.flood(total: Self.size, written: written), group: harness.group)
        try await harness.apply([vhostService("big", hosts: ["big.test"], backends: [backend("b", server)])])
        let client = try await StreamingClient.connect(port: harness.httpPort, group: harness.group)
        try await client.send(HTTPRequestText.make(host: "big.test"))
        #expect(await eventually(timeout: .seconds(120)) { client.headLength.map { client.received == $0 + Self.size } ?? false })
        #expect(client.prefix.hasPrefix("HTTP/1.1 200"))
        #expect(client.prefix.contains("Content-Length: \(Self.size)") || client.prefix.contains("content-length: \(Self.size)"))
        #expect(await eventually { harness.stats("big")?.received == Self.size })
        await client.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("a large upload passes through whole")
    func largeUpload() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.sink, group: harness.group)
        try await harness.apply([vhostService("up", hosts: ["up.test"], backends: [backend("s", server)])])
        let client = try await StreamingClient.connect(port: harness.httpPort, group: harness.group)
        let head = HTTPRequestText.make("PUT", "/upload", host: "up.test", headers: [("Content-Length", String(Self.size))])
        try await client.upload(head: head, total: Self.size)
        #expect(await eventually(timeout: .seconds(120)) { client.prefix.contains("received \(Self.size)") })
        #expect(client.written == Self.size)
        #expect(await eventually { harness.stats("up")?.sent == Self.size })
        await client.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("a client that does not read stops the backend: the proxy buffers a bounded amount")
    func slowReaderIsBounded() async throws {
        let harness = try await HTTPHarness.start()
        let written = NIOLockedValueBox(0)
        let total = 256 * 1024 * 1024
        let server = try await TestHTTPBackend.start(.flood(total: total, written: written), group: harness.group)
        try await harness.apply([vhostService("slow", hosts: ["slow.test"], backends: [backend("b", server)])])
        // This client never reads.
        let client = try await StreamingClient.connect(port: harness.httpPort, group: harness.group, autoRead: false)
        try await client.send(HTTPRequestText.make(host: "slow.test"))
        let stalledAt = await stalledValue { written.withLockedValue { $0 } }
        // Kernel socket buffers on both hops plus a few of the proxy's own.
        #expect(stalledAt < 48 * 1024 * 1024, "the backend wrote \(stalledAt) bytes to a client that reads nothing")
        #expect(stalledAt > 0)
        await client.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("a backend that does not read stops the client's upload: the proxy buffers a bounded amount")
    func uploadToStalledBackendIsBounded() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.stall, group: harness.group)
        try await harness.apply([vhostService("stall", hosts: ["stall.test"], backends: [backend("s", server)])])
        let client = try await StreamingClient.connect(port: harness.httpPort, group: harness.group)
        let total = 256 * 1024 * 1024
        let head = HTTPRequestText.make("POST", "/", host: "stall.test", headers: [("Content-Length", String(total))])
        try await client.upload(head: head, total: total)
        let stalledAt = await stalledValue { client.written }
        #expect(stalledAt < 48 * 1024 * 1024, "the client wrote \(stalledAt) bytes towards a backend that reads nothing")
        await client.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("chunked bodies pass both ways, trailers included")
    func chunked() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.echo, group: harness.group)
        try await harness.apply([vhostService("echo", hosts: ["echo.test"], backends: [backend("e", server)])])
        let connection = try await harness.connect()
        try await connection.send(
            "POST /echo HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n")
        let response = try await connection.readResponse()
        #expect(response.status == 200)
        #expect(response.wasChunked)
        #expect(response.text == "hello, world")
        #expect(response.trailers.contains { $0.0.lowercased() == "x-body-length" && $0.1 == "12" })
        // The connection is still good for the next request.
        try await connection.send(
            "POST /echo HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        #expect(try await connection.readResponse().text == "abc")
        let seen = server.requests.first
        #expect(seen?.headers["transfer-encoding"].first == "chunked")
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("Expect: 100-continue gets the backend's 100 before the body is sent")
    func expectContinue() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.expectContinue, group: harness.group)
        try await harness.apply([vhostService("c", hosts: ["c.test"], backends: [backend("s", server)])])
        let connection = try await harness.connect()
        try await connection.send(
            "PUT /x HTTP/1.1\r\nHost: c.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        let interim = try await connection.readResponse(informational: true)
        #expect(interim.status == 100)
        try await connection.send("hello")
        let response = try await connection.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "received 5")
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("pipelined requests are answered in order")
    func pipelining() async throws {
        let harness = try await HTTPHarness.start()
        let a = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        let b = try await TestHTTPBackend.start(.named("b"), group: harness.group)
        try await harness.apply([
            vhostService("a", hosts: ["a.test"], backends: [backend("a1", a)]),
            vhostService("b", hosts: ["b.test"], backends: [backend("b1", b)]),
        ])
        let connection = try await harness.connect()
        let hosts = ["a.test", "b.test", "nobody.test", "a.test", "b.test", "b.test", "a.test"]
        try await connection.send(hosts.map { HTTPRequestText.make(host: $0) }.joined())
        var answers: [String] = []
        for _ in hosts {
            let response = try await connection.readResponse()
            answers.append(response.status == 404 ? "404" : response.text)
        }
        #expect(answers == ["a", "b", "404", "a", "b", "b", "a"])
        #expect(await eventually { harness.logLines().count == hosts.count })
        #expect(await eventually { harness.driver.read { $0.openConnections } == 0 })
        await connection.close()
        await a.close()
        await b.close()
        await harness.shutdown()
    }

    @Test("hundreds of pipelined requests with bodies, some answered by the proxy itself, come back in order")
    func manyPipelined() async throws {
        let harness = try await HTTPHarness.start()
        let echo = try await TestHTTPBackend.start(.echo, group: harness.group)
        try await harness.apply([vhostService("e", hosts: ["e.test"], backends: [backend("e1", echo)])])
        let connection = try await harness.connect()
        // Every fourth goes to an unknown host: answered at once, while the
        // requests after it are still waiting their turn.
        let count = 400
        let requests = (0..<count).map { i in
            i % 4 == 3
                ? HTTPRequestText.make(host: "nobody.test")
                : HTTPRequestText.make("POST", "/", host: "e.test", body: "body \(i)")
        }
        try await connection.send(requests.joined())
        var answers: [String] = []
        for _ in 0..<count {
            let response = try await connection.readResponse()
            answers.append(response.status == 404 ? "404" : response.text)
        }
        #expect(answers == (0..<count).map { $0 % 4 == 3 ? "404" : "body \($0)" })
        // The connection still takes a request after them.
        try await connection.send(HTTPRequestText.make("POST", "/", host: "e.test", body: "after"))
        #expect(try await connection.readResponse().text == "after")
        await connection.close()
        await echo.close()
        await harness.shutdown()
    }

    @Test("a HEAD request gets the head alone and the connection stays usable")
    func head() async throws {
        let harness = try await HTTPHarness.start()
        let echo = try await TestHTTPBackend.start(.echo, group: harness.group)
        try await harness.apply([vhostService("h", hosts: ["h.test"], backends: [backend("e", echo)])])
        let connection = try await harness.connect()
        let response = try await connection.request("HEAD", "/", host: "h.test")
        #expect(response.status == 200)
        #expect(response.body.isEmpty)
        try await connection.send("POST / HTTP/1.1\r\nHost: h.test\r\nContent-Length: 2\r\n\r\nok")
        #expect(try await connection.readResponse().text == "ok")
        await connection.close()
        await echo.close()
        await harness.shutdown()
    }

    @Test("an HTTP/1.0 client gets an answer it can read to the end")
    func http10() async throws {
        let harness = try await HTTPHarness.start()
        let echo = try await TestHTTPBackend.start(.echo, group: harness.group)
        try await harness.apply([vhostService("old", hosts: ["old.test"], backends: [backend("e", echo)])])
        let connection = try await harness.connect()
        try await connection.send("POST / HTTP/1.0\r\nHost: old.test\r\nContent-Length: 3\r\n\r\nabc")
        #expect(await connection.waitForClose())
        let response = try await connection.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "abc")
        await echo.close()
        await harness.shutdown()
    }
}
