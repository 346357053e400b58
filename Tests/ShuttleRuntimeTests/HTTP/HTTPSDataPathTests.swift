import Foundation
import NIOConcurrencyHelpers
import NIOCore
import ShuttleModel
import ShuttleRuntime
import ShuttleTestSupport
import Testing

#if os(Linux)
import Glibc
#endif

/// Requests, bodies and upgrades through `-https`, on the data path the
/// harness runs (the relay with the system's OpenSSL by default on Linux,
/// SwiftNIO with `SHUTTLE_TEST_HTTP_RELAY=nio`).
@Suite("HTTPS: requests, bodies and upgrades over TLS")
struct HTTPSDataPathTests {
    /// A harness serving one certificate for `*.tls.test`.
    func start() async throws -> (HTTPHarness, URL) {
        let directory = try makeTemporaryDirectory()
        try TestCertificate.write(file: "default", dnsNames: ["*.tls.test"], to: directory)
        return (try await HTTPHarness.start(certificates: directory), directory)
    }

    @Test("a large download and a large upload pass through TLS whole")
    func largeBodies() async throws {
        let (harness, directory) = try await start()
        defer { try? FileManager.default.removeItem(at: directory) }
        let size = 8 * 1024 * 1024
        let written = NIOLockedValueBox(0)
        let flood = try await TestHTTPBackend.start(.flood(total: size, written: written), group: harness.group)
        let sink = try await TestHTTPBackend.start(.sink, group: harness.group)
        try await harness.apply([
            vhostService("down", hosts: ["down.tls.test"], backends: [backend("f", flood)]),
            vhostService("up", hosts: ["up.tls.test"], backends: [backend("s", sink)]),
        ])
        let connection = try await harness.connectTLS(serverName: "down.tls.test")
        try await connection.send(HTTPRequestText.make(host: "down.tls.test"))
        let download = try await connection.readResponse(timeout: .seconds(120))
        #expect(download.status == 200)
        #expect(download.body.count == size)
        // The same connection carries the upload after the download.
        let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let head = HTTPRequestText.make(
            "PUT", "/upload", host: "up.tls.test", headers: [("Content-Length", String(size))])
        try await connection.send(Array(head.utf8) + body)
        let upload = try await connection.readResponse(timeout: .seconds(120))
        #expect(upload.text == "received \(size)")
        #expect(await eventually { harness.stats("down")?.received == size })
        #expect(await eventually { harness.stats("up")?.sent == size })
        await connection.close()
        await flood.close()
        await sink.close()
        await harness.shutdown()
    }

    @Test("keep-alive and pipelined requests over TLS are answered in order, and the backend hears https")
    func pipelined() async throws {
        let (harness, directory) = try await start()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = try await TestHTTPBackend.start(.named("A"), group: harness.group)
        let b = try await TestHTTPBackend.start(.named("B"), group: harness.group)
        try await harness.apply([
            vhostService("a", hosts: ["a.tls.test"], backends: [backend("a", a)]),
            vhostService("b", hosts: ["b.tls.test"], backends: [backend("b", b)]),
        ])
        let connection = try await harness.connectTLS(serverName: "a.tls.test")
        let hosts = ["a.tls.test", "b.tls.test", "a.tls.test", "b.tls.test", "b.tls.test"]
        try await connection.send(hosts.map { HTTPRequestText.make(host: $0) }.joined())
        for host in hosts {
            let response = try await connection.readResponse()
            #expect(response.status == 200)
            #expect(response.text == (host.hasPrefix("a") ? "A" : "B"))
        }
        for round in 0..<20 {
            let response = try await connection.request(host: round % 2 == 0 ? "a.tls.test" : "b.tls.test")
            #expect(response.text == (round % 2 == 0 ? "A" : "B"))
        }
        let head = try #require(a.requests.first)
        #expect(head.headers["x-forwarded-proto"].first == "https")
        #expect(await eventually { harness.stats("a")?.httpConnections == 12 })
        await connection.close()
        #expect(await eventually { harness.driver.read { $0.openConnections } == 0 })
        await a.close()
        await b.close()
        await harness.shutdown()
    }

    @Test("requests that come as several TLS records in one segment are all answered")
    func recordsInOneSegment() async throws {
        let (harness, directory) = try await start()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await TestHTTPBackend.start(.named("R"), group: harness.group)
        try await harness.apply([vhostService("r", hosts: ["r.tls.test"], backends: [backend("r", server)])])
        let connection = try await harness.connectTLS(serverName: "r.tls.test")
        for round in 1...3 {
            // A record per write; one flush sends them together.
            for _ in 0..<round + 1 {
                connection.channel.write(ByteBuffer(string: HTTPRequestText.make(host: "r.tls.test")), promise: nil)
            }
            connection.channel.flush()
            for _ in 0..<round + 1 {
                #expect(try await connection.readResponse().text == "R")
            }
        }
        await connection.close()
        await server.close()
        await harness.shutdown()
    }

    @Test("after a 101 over TLS the connection is a two-way byte stream")
    func upgrade() async throws {
        let (harness, directory) = try await start()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await TestHTTPBackend.start(.webSocketEcho, group: harness.group)
        try await harness.apply([vhostService("ws", hosts: ["ws.tls.test"], backends: [backend("w", server)])])
        let connection = try await harness.connectTLS(serverName: "ws.tls.test")
        try await connection.send(HTTPRequestText.make("GET", "/chat", host: "ws.tls.test", headers: WebSocketTests.upgrade))
        let response = try await connection.readResponse()
        #expect(response.status == 101)
        #expect(await connection.waitForBytes(24))
        #expect(WebSocketFrames.parse(connection.takeBytes())?.0 == "hello from the backend")
        for message in ["one", String(repeating: "y", count: 40_000)] {
            try await connection.send(WebSocketFrames.text(message, masked: true))
            let expected = WebSocketFrames.text("echo: " + message, masked: false)
            #expect(await connection.waitForBytes(expected.count))
            #expect(connection.takeBytes() == expected)
        }
        await connection.close()
        #expect(await eventually { harness.driver.read { $0.openConnections } == 0 })
        await server.close()
        await harness.shutdown()
    }

    #if os(Linux)
    /// What the proxy sent before it closed `fd`: its end, or a reset
    /// (unread bytes left behind make the close a reset). A read that times
    /// out (30 s) fails the test.
    func closedAfter(_ fd: Int32) -> [UInt8] {
        do {
            return try RawSocket.readToEnd(fd)
        } catch {
            #expect("\(error)".contains("errno \(ECONNRESET)"), "the proxy did not close: \(error)")
            return []
        }
    }

    @Test("clients that do not speak TLS, or leave mid-handshake, are closed; the next client is served")
    func hostileClients() async throws {
        let (harness, directory) = try await start()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await TestHTTPBackend.start(.named("ok"), group: harness.group)
        try await harness.apply([vhostService("ok", hosts: ["ok.tls.test"], backends: [backend("o", server)])])
        let port = harness.httpsPort
        // Plain HTTP to the TLS port: closed, with no HTTP answer.
        let plain = try RawSocket.connect(port: port)
        try RawSocket.send(plain, "GET / HTTP/1.1\r\nHost: ok.tls.test\r\n\r\n")
        let answer = closedAfter(plain)
        #expect(!String(decoding: answer, as: UTF8.self).contains("HTTP/1."))
        close(plain)
        // Bytes that are not TLS at all.
        let garbage = try RawSocket.connect(port: port)
        try RawSocket.send(garbage, [UInt8](repeating: 0xff, count: 4096))
        _ = closedAfter(garbage)
        close(garbage)
        // The start of a ClientHello, then the client's end.
        let partial = try RawSocket.connect(port: port)
        try RawSocket.send(partial, [0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        RawSocket.shutdownWrite(partial)
        _ = closedAfter(partial)
        close(partial)
        // A client that connects and leaves.
        close(try RawSocket.connect(port: port))
        let connection = try await harness.connectTLS(serverName: "ok.tls.test")
        let response = try await connection.request(host: "ok.tls.test")
        #expect(response.text == "ok")
        #expect(await eventually { harness.stats("ok")?.httpConnections == 1 })
        await connection.close()
        await server.close()
        await harness.shutdown()
    }
    #endif
}
