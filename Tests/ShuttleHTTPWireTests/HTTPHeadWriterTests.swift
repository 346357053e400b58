import Testing

@testable import ShuttleHTTPWire

@Suite("HTTP wire: field lines a head writer keeps go as they came")
struct HTTPHeadWriterTests {
    /// Scans `text` as a response and writes it for a client of HTTP/1.`minor`.
    func response(_ text: String, minor: Int = 1, asksUpgrade: Bool = false) throws -> String {
        var scanner = HTTPHeadScanner(limit: 1 << 20)
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        try bytes.withUnsafeBytes { raw in
            guard case .head(let head) = scanner.scanResponse(raw, toHEAD: false) else {
                Issue.record("not a head: \(text.prefix(80))")
                return
            }
            _ = HTTPHeadWriter.clientResponse(
                head, fields: scanner.fields, of: raw, clientMinorVersion: minor, toHEAD: false, keepAlive: true,
                asksUpgrade: asksUpgrade, requestID: "id1", backend: "b:80", into: &out)
            _ = try #require(head.length == bytes.count)
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test("lines kept between dropped ones keep their spacing and order; the dropped ones are gone")
    func keptAroundDropped() throws {
        let written = try response(
            "HTTP/1.1 200 OK\r\nServer:origin\r\nConnection: keep-alive, X-Private\r\nX-Private: p\r\n"
                + "Content-Type:  text/plain \t\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\nX-Backend: spoof\r\n"
                + "ETag: \"a\"\r\n\r\n")
        #expect(
            written
                == "HTTP/1.1 200 OK\r\nServer:origin\r\nContent-Type:  text/plain \t\r\nContent-Length: 2\r\n"
                + "ETag: \"a\"\r\nX-Request-Id: id1\r\nX-Backend: b:80\r\n\r\n")
    }

    @Test("a head whose every line is kept, or none is, is written whole")
    func allOrNone() throws {
        #expect(
            try response("HTTP/1.1 204 No Content\r\nA: 1\r\nB:2\r\n\r\n")
                == "HTTP/1.1 204 No Content\r\nA: 1\r\nB:2\r\nX-Request-Id: id1\r\nX-Backend: b:80\r\n\r\n")
        #expect(
            try response("HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\nKeep-Alive: timeout=1\r\n\r\n")
                == "HTTP/1.1 204 No Content\r\nX-Request-Id: id1\r\nX-Backend: b:80\r\n\r\n")
    }

    @Test("an answer of many short lines, a bare status and an upgrade fits the room the writer makes")
    func shortLinesFit() throws {
        let lines = (0..<2_000).map { "x\($0 % 10):\($0 % 7)" }
        let written = try response(
            "HTTP/1.1 101\r\nUpgrade:w\r\nConnection:upgrade\r\n" + lines.joined(separator: "\r\n") + "\r\n\r\n",
            minor: 0, asksUpgrade: true)
        #expect(written.hasPrefix("HTTP/1.0 101 \r\nx0:0\r\n"))
        #expect(written.hasSuffix("x9:4\r\nConnection: upgrade\r\nUpgrade: w\r\nX-Request-Id: id1\r\nX-Backend: b:80\r\n\r\n"))
    }
}
