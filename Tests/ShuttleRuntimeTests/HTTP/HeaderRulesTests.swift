import NIOCore
import NIOHTTP1
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

@Suite("HTTP virtual hosts: header rules (COMPAT.md)")
struct HeaderRulesTests {
    /// One request through a proxy to a `named` backend; returns the
    /// client's answer and the head the backend read.
    func roundTrip(_ headers: [(String, String)]) async throws -> (RawHTTPResponse, HTTPRequestHead, String) {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("h", hosts: ["h.test"], backends: [backend("a", server)])])
        let response = try await harness.request(host: "h.test", headers: headers)
        let head = try #require(server.requests.first)
        let address = server.address
        await server.close()
        await harness.shutdown()
        return (response, head, address)
    }

    @Test("hop-by-hop headers, and those Connection names, are removed on the way to the backend")
    func hopByHopRequest() async throws {
        let (_, head, _) = try await roundTrip([
            ("Connection", "keep-alive, X-Secret"), ("X-Secret", "x"), ("Keep-Alive", "timeout=5"),
            ("Proxy-Authorization", "Basic Zm9v"), ("TE", "trailers"), ("Upgrade", "h2c"), ("X-Kept", "yes"),
        ])
        for name in ["x-secret", "keep-alive", "proxy-authorization", "te", "upgrade"] {
            #expect(head.headers[name].isEmpty, "\(name) reached the backend")
        }
        #expect(head.headers["connection"].allSatisfy { !$0.lowercased().contains("x-secret") })
        #expect(head.headers["x-kept"] == ["yes"])
    }

    @Test("Connection cannot name Content-Length or Host away: a body never reaches the backend unframed")
    func connectionCannotRemoveFraming() async throws {
        let harness = try await HTTPHarness.start()
        let server = try await TestHTTPBackend.start(.named("a"), group: harness.group)
        try await harness.apply([vhostService("h", hosts: ["h.test"], backends: [backend("a", server)])])
        let connection = try await harness.connect()
        // Were Content-Length removed, the backend would read the body as a
        // request of its own, one the proxy never saw (request smuggling).
        let first = try await connection.request(
            "GET", "/first", host: "h.test", headers: [("Connection", "content-length, host")],
            body: "GET /smuggled HTTP/1.1\r\nHost: h.test\r\n\r\n")
        #expect(first.status == 200)
        let second = try await connection.request("GET", "/second", host: "h.test")
        #expect(second.status == 200)
        #expect(server.requests.map(\.uri) == ["/first", "/second"])
        #expect(server.requests.first?.headers["content-length"] == ["40"])
        #expect(server.requests.first?.headers["host"] == ["h.test"])
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("hop-by-hop headers of the backend's answer are removed on the way to the client")
    func hopByHopResponse() async throws {
        let (response, _, _) = try await roundTrip([])
        #expect(response.header("keep-alive") == nil)
        #expect(response.header("x-hop-private") == nil)
        #expect(response.header("proxy-authenticate") == nil)
        #expect(response.header("x-served-by") == "a")
        #expect(response.values("connection").allSatisfy { !$0.lowercased().contains("x-hop-private") })
    }

    @Test("X-Forwarded-For gets the client's address appended")
    func forwardedFor() async throws {
        let (_, fresh, _) = try await roundTrip([])
        #expect(fresh.headers["x-forwarded-for"] == ["127.0.0.1"])
        let (_, appended, _) = try await roundTrip([("X-Forwarded-For", "203.0.113.7")])
        #expect(appended.headers["x-forwarded-for"] == ["203.0.113.7, 127.0.0.1"])
    }

    @Test("X-Forwarded-Proto is set to http when absent and kept when present")
    func forwardedProto() async throws {
        let (_, fresh, _) = try await roundTrip([])
        #expect(fresh.headers["x-forwarded-proto"] == ["http"])
        let (_, kept, _) = try await roundTrip([("X-Forwarded-Proto", "https")])
        #expect(kept.headers["x-forwarded-proto"] == ["https"])
    }

    @Test("X-Request-Id is generated (16 hex digits) on the request and the response")
    func requestIDGenerated() async throws {
        let (response, head, _) = try await roundTrip([])
        let id = try #require(response.header("x-request-id"))
        #expect(id.count == 16)
        #expect(id.allSatisfy { $0.isHexDigit })
        #expect(head.headers["x-request-id"] == [id])
    }

    @Test("a client's X-Request-Id is prefixed with a new one: NEW.OLD")
    func requestIDPrefixed() async throws {
        let (response, head, _) = try await roundTrip([("X-Request-Id", "abc-123")])
        let id = try #require(response.header("x-request-id"))
        #expect(id.hasSuffix(".abc-123"))
        #expect(id.count == 16 + 1 + 7)
        #expect(head.headers["x-request-id"] == [id])
    }

    @Test("X-Backend names the backend that answered")
    func xBackend() async throws {
        let (response, _, address) = try await roundTrip([])
        #expect(response.header("x-backend") == address)
    }
}
