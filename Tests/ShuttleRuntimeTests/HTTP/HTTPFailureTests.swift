import Foundation
import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: failures get clear answers and are counted")
struct HTTPFailureTests {
    @Test("a backend that resets the connection: 502, counted and logged with the reason")
    func reset() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.reset, group: harness.group)
        try await harness.apply([vhostService("r", hosts: ["r.test"], backends: [backend("a", server)])])
        let response = try await harness.request(host: "r.test")
        #expect(response.status == 502)
        #expect(response.header("x-request-id") != nil)
        #expect(await eventually { harness.stats("r")?.httpErrors == 1 })
        #expect(harness.backendStats("r", "a")?.httpActive == 0)
        let line = try #require(await firstLine(harness) { $0.contains("status=502") })
        #expect(line.contains("backend=\(server.address)"))
        #expect(!line.hasSuffix("err="))
        await server.close()
        await harness.shutdown()
    }

    @Test("a backend that answers garbage: 502")
    func garbage() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.garbage, group: harness.group)
        try await harness.apply([vhostService("g", hosts: ["g.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        #expect(try await connection.request(host: "g.test").status == 502)
        // Not retried: the backend said something.
        #expect(try await connection.request(host: "g.test").status == 502)
        #expect(server.connections == 2)
        #expect(await eventually { harness.stats("g")?.httpErrors == 2 })
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("no answer within server_timeout: 504, counted; the client connection stays usable")
    func serverTimeout() async throws {
        let harness = try await HTTPHarness.start()
        let silent = try await TestHTTPBackend.start(.silent, group: harness.group)
        let named = try await TestHTTPBackend.start(.named("ok"), group: harness.group)
        try await harness.apply([
            vhostService("s", hosts: ["s.test"], backends: [backend("a", silent)]) { $0.serverTimeout = 300 },
            vhostService("ok", hosts: ["ok.test"], backends: [backend("b", named)]),
        ])
        let connection = try await harness.connect()
        let response = try await connection.request(host: "s.test")
        #expect(response.status == 504)
        #expect(await eventually { harness.stats("s")?.httpErrors == 1 })
        #expect(harness.backendStats("s", "a")?.httpActive == 0)
        #expect(try await connection.request(host: "ok.test").text == "ok")
        #expect(await firstLine(harness) { $0.contains("status=504") } != nil)
        await connection.close()
        await silent.close()
        await named.close()
        await harness.shutdown()
    }

    @Test("each request on a connection gets its own server_timeout, counted from when it was sent")
    func serverTimeoutPerRequest() async throws {
        let harness = try await HTTPHarness.start()
        let silent = try await TestHTTPBackend.start(.silent, group: harness.group)
        let named = try await TestHTTPBackend.start(.named("ok"), group: harness.group)
        try await harness.apply([
            vhostService("s", hosts: ["s.test"], backends: [backend("a", silent)]) { $0.serverTimeout = 400 },
            vhostService("ok", hosts: ["ok.test"], backends: [backend("b", named)]) { $0.serverTimeout = 400 },
        ])
        let connection = try await harness.connect()
        // The first request arms the connection's timer; it is answered.
        #expect(try await connection.request(host: "ok.test").text == "ok")
        try await Task.sleep(for: .milliseconds(250))
        // The timer fires before this request's deadline: it must wait for the rest.
        let sent = ContinuousClock.now
        let response = try await connection.request(host: "s.test")
        let waited = ContinuousClock.now - sent
        #expect(response.status == 504)
        #expect(waited >= .milliseconds(400), "answered after \(waited), before its own 400 ms")
        #expect(try await connection.request(host: "ok.test").text == "ok")
        await connection.close()
        await silent.close()
        await named.close()
        await harness.shutdown()
    }

    @Test("http_active counts requests in progress on their backend; http_connections counts them all")
    func activeCounters() async throws {
        let harness = try await HTTPHarness.start()
        let silent = try await TestHTTPBackend.start(.silent, group: harness.group)
        try await harness.apply([vhostService("s", hosts: ["s.test"], backends: [backend("a", silent)])])
        let connection = try await harness.connect()
        try await connection.send(HTTPRequestText.make(host: "s.test"))
        #expect(await eventually { harness.backendStats("s", "a")?.httpActive == 1 })
        #expect(harness.stats("s")?.httpActive == 1)
        #expect(harness.stats("s")?.httpConnections == 1)
        await connection.close()
        #expect(await eventually { harness.backendStats("s", "a")?.httpActive == 0 })
        #expect(harness.stats("s")?.httpActive == 0)
        #expect(harness.stats("s")?.httpErrors == 0)
        await silent.close()
        await harness.shutdown()
    }

    @Test("a request line and headers over 64 KiB get 431")
    func headersTooLarge() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("h", hosts: ["h.test"], backends: [backend("a", server)])])
        // Just under the limit passes.
        let fits = String(repeating: "x", count: 60 * 1024)
        #expect(try await harness.request(host: "h.test", headers: [("X-Big", fits)]).status == 200)
        // One header too large, many headers too large together, a long URL.
        let big = String(repeating: "y", count: 70 * 1024)
        #expect(try await harness.request(host: "h.test", headers: [("X-Big", big)]).status == 431)
        let many = (0..<40).map { ("X-Part-\($0)", String(repeating: "z", count: 2000)) }
        #expect(try await harness.request(host: "h.test", headers: many).status == 431)
        #expect(try await harness.request("GET", "/" + big, host: "h.test").status == 431)
        #expect(server.requests.count == 1)
        await server.close()
        await harness.shutdown()
    }

    @Test("bytes that are not HTTP (a TLS hello on the plain port) get 400 and a close")
    func notHTTP() async throws {
        let harness = try await HTTPHarness.start()
        let connection = try await harness.connect()
        try await connection.send([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03] + [UInt8](repeating: 0, count: 40))
        #expect(try await connection.readResponse().status == 400)
        #expect(await connection.waitForClose())
        await harness.shutdown()
    }

    @Test("a client idle past client_timeout is closed")
    func clientTimeout() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([
            vhostService("i", hosts: ["i.test"], backends: [backend("a", server)]) { $0.clientTimeout = 200 }
        ])
        let connection = try await harness.connect()
        #expect(try await connection.request(host: "i.test").text == "a")
        #expect(await connection.waitForClose())
        await server.close()
        await harness.shutdown()
    }

    func firstLine(_ harness: HTTPHarness, _ matching: @escaping (String) -> Bool) async -> String? {
        _ = await eventually { harness.logLines().contains(where: matching) }
        return harness.logLines().first(where: matching).map { $0.trimmingCharacters(in: .newlines) }
    }
}
