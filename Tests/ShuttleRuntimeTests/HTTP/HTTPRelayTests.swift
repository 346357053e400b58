import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The plain-HTTP listener on the relay's epoll loops (`-http-relay epoll`,
/// the default on Linux: every HTTP suite runs on it, and again on NIO in
/// CI with `SHUTTLE_TEST_HTTP_RELAY=nio`, see `.ci/run`). These cases are
/// about the relay itself, and name it.
@Suite("HTTP virtual hosts on the epoll relay")
struct HTTPRelayTests {
    @Test("keep-alive requests, pipelined too, share one backend connection and come back in order")
    func keepAliveAndPipelining() async throws {
        let harness = try await HTTPHarness.start(relay: .epoll)
        let server = try await TestHTTPBackend.start(.echo, group: harness.group)
        try await harness.apply([vhostService("e", hosts: ["e.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        for index in 0..<5 {
            let response = try await connection.request("POST", "/\(index)", host: "e.test", body: "body \(index)")
            #expect(response.status == 200)
            #expect(response.text == "body \(index)")
        }
        // Three requests in one write, one with a chunked body.
        try await connection.send(
            HTTPRequestText.make("POST", "/p1", host: "e.test", body: "first")
                + "POST /p2 HTTP/1.1\r\nHost: e.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nsec\r\n3\r\nond\r\n0\r\n\r\n"
                + HTTPRequestText.make("POST", "/p3", host: "e.test", body: "third"))
        for expected in ["first", "second", "third"] {
            #expect(try await connection.readResponse().text == expected)
        }
        #expect(server.connections == 1)
        #expect(server.requests.map(\.uri) == ["/0", "/1", "/2", "/3", "/4", "/p1", "/p2", "/p3"])
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("an HTTP/1.0 client gets a chunked answer as its bytes alone, then the close")
    func http10ClientOfAChunkedAnswer() async throws {
        let harness = try await HTTPHarness.start(relay: .epoll)
        let server = try await TestHTTPBackend.start(.echo, group: harness.group)
        try await harness.apply([vhostService("e", hosts: ["e.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        try await connection.send("POST /old HTTP/1.0\r\nHost: e.test\r\nContent-Length: 15\r\n\r\nan old client\r\n")
        #expect(await connection.waitForClose())
        let answer = connection.text
        #expect(answer.hasPrefix("HTTP/1.0 200"))
        #expect(answer.hasSuffix("\r\n\r\nan old client\r\n"), "\(answer)")
        #expect(!answer.lowercased().contains("transfer-encoding"))
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("a pooled connection the backend closed after its answer: the next request goes on a new one")
    func backendClosedPooledConnection() async throws {
        let harness = try await HTTPHarness.start(relay: .epoll)
        let server = try await TestHTTPBackend.start(.closeAfterResponse("a"), group: harness.group)
        try await harness.apply([vhostService("c", hosts: ["c.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        for _ in 0..<3 { #expect(try await connection.request(host: "c.test").text == "a") }
        #expect(server.connections == 3)
        #expect(harness.stats("c")?.httpErrors == 0)
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("after a 504 on a head the backend left half-sent, the next answer on the connection is read afresh")
    func halfSentHeadThen504() async throws {
        let harness = try await HTTPHarness.start(relay: .epoll)
        let named = try await TestHTTPBackend.start(.named("ok"), group: harness.group)
        // A backend that sends 300 bytes of a head and then nothing.
        let (listener, port) = try RawSocket.listen()
        let partial = Task {
            try await onThread {
                let backend = try RawSocket.accept(listener)
                _ = try RawSocket.read(backend)
                try RawSocket.send(backend, "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "v", count: 270))
                return backend
            }
        }
        try await harness.apply([
            vhostService("half", hosts: ["half.test"], backends: [BackendConfig(name: "p", address: "127.0.0.1:\(port)")]) {
                $0.serverTimeout = 300
            },
            vhostService("ok", hosts: ["ok.test"], backends: [backend("b", named)]),
        ])
        let connection = try await harness.connect()
        #expect(try await connection.request(host: "half.test").status == 504)
        // A shorter head than what was searched of the half-sent one.
        #expect(try await connection.request(host: "ok.test").text == "ok")
        close(try await partial.value)
        close(listener)
        await connection.close()
        await named.close()
        await harness.shutdown()
    }

    @Test("bytes that cannot start a request get 400 at once, counted in the access log")
    func notHTTP() async throws {
        let harness = try await HTTPHarness.start(relay: .epoll)
        let connection = try await harness.connect()
        try await connection.send([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03])
        #expect(try await connection.readResponse().status == 400)
        #expect(await connection.waitForClose())
        #expect(await eventually { harness.logLines().contains { $0.contains("status=400") } })
        await connection.close()
        await harness.shutdown()
    }

    @Test("the relay stops with clients still connected, idle or waiting on a backend")
    func stopsWithOpenConnections() async throws {
        let harness = try await HTTPHarness.start(relay: .epoll)
        let silent = try await TestHTTPBackend.start(.silent, group: harness.group)
        try await harness.apply([vhostService("s", hosts: ["s.test"], backends: [backend("a", silent)])])
        let idle = try await harness.connect()
        let waiting = try await harness.connect()
        try await waiting.send(HTTPRequestText.make(host: "s.test"))
        #expect(await eventually { harness.backendStats("s", "a")?.httpActive == 1 })
        harness.driver.shutdownRelay()
        #expect(await idle.waitForClose())
        #expect(await waiting.waitForClose())
        #expect(await eventually { harness.backendStats("s", "a")?.httpActive == 0 })
        await silent.close()
        await harness.shutdown()
    }
}
