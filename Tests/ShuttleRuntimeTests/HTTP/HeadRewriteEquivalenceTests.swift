import NIOCore
import NIOHTTP1
import PropertyBased
import ShuttleHTTPWire
import ShuttleTestSupport
import Testing

@testable import ShuttleRuntime

/// The raw head writer against the header rules the NIO path applies: the
/// same request reaches the backend, the same answer reaches the client.
@Suite("HTTP wire: heads written from bytes are the heads the header rules make")
struct HeadRewriteEquivalenceTests {
    static let requestLines = [
        "GET / HTTP/1.1", "POST /upload?x=1 HTTP/1.1", "GET /old HTTP/1.0", "PUT /p HTTP/1.1", "HEAD /h HTTP/1.1",
    ]

    static let requestFields = [
        "Host: h.test", "User-Agent: wrk/4", "Accept: */*", "Connection: keep-alive", "Connection: close",
        "Connection: x-secret, X-Other", "Connection: Upgrade", "Connection: content-length, host", "Upgrade: websocket",
        "upgrade: h2c", "Keep-Alive: timeout=5", "Proxy-Authorization: Basic Zm9v", "TE: trailers", "Trailer: X-T",
        "Proxy-Connection: keep-alive", "X-Secret: s", "x-other: o", "X-Forwarded-For: 192.0.2.1",
        "x-forwarded-for: 198.51.100.7, 203.0.113.9", "X-Forwarded-Proto: https", "X-Request-Id: client-id",
        "Content-Length: 3", "Transfer-Encoding: chunked", "Connection: x-forwarded-for", "Connection: X-Request-Id",
    ]

    static let statusLines = [
        "HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found", "HTTP/1.1 204 No Content", "HTTP/1.1 304 Not Modified",
        "HTTP/1.0 200 OK", "HTTP/1.1 101 Switching Protocols", "HTTP/1.1 503 Unavailable",
    ]

    static let responseFields = [
        "Server: origin", "Content-Type: text/plain", "Connection: keep-alive", "Connection: close",
        "Connection: X-Hop-Private", "X-Hop-Private: p", "Keep-Alive: timeout=5", "Proxy-Authenticate: Basic",
        "Upgrade: websocket", "Content-Length: 5", "Transfer-Encoding: chunked", "X-Request-Id: backend-id",
        "X-Backend: spoofed", "Connection: content-length",
    ]

    static func bytes(_ start: String, _ fields: [String]) -> [UInt8] {
        Array((([start] + fields).joined(separator: "\r\n") + "\r\n\r\n").utf8)
    }

    /// Header lists compared as NIOHTTP1 reads them, values without the
    /// trailing whitespace llhttp keeps.
    static func fields(_ headers: HTTPHeaders) -> [String] {
        headers.map { "\($0.name): \($0.value.trimmingCharacters(in: " \t"))" }
    }

    static func fields(_ list: [(String, String)]) -> [String] {
        list.map { "\($0.0): \($0.1.trimmingCharacters(in: " \t"))" }
    }

    @Test("requests: the backend gets the same head both ways")
    func requestsMatch() async {
        let picks = Gen.int(in: 0...(Self.requestFields.count - 1)).array(of: 0...7)
        let lines = Gen.int(in: 0...(Self.requestLines.count - 1))
        await propertyCheck(count: 600, input: lines, picks, Gen.bool, Gen.bool) { line, picks, tls, withIP in
            Self.checkRequest(line: line, picks: picks, isTLS: tls, clientIP: withIP ? "10.1.2.3" : nil)
        }
    }

    static func checkRequest(line: Int, picks: [Int], isTLS: Bool, clientIP: String?) {
        var fields = picks.map { Self.requestFields[$0] }
        if !fields.contains("Host: h.test") { fields.insert("Host: h.test", at: 0) }
        let head = Self.bytes(Self.requestLines[line], fields)
        var scanner = HTTPHeadScanner()
        guard case .head(let scanned) = head.withUnsafeBytes({ scanner.scanRequest($0) }) else { return }
        let requestID = "0123456789abcdef.client-id"
        var raw: [UInt8] = []
        head.withUnsafeBytes {
            HTTPHeadWriter.backendRequest(
                scanned, fields: scanner.fields, of: $0, clientIP: clientIP, isTLS: isTLS, requestID: requestID,
                into: &raw)
        }
        // The NIO path: decoded, rewritten by the rules.
        let decoded = NIOReading.requests(head)
        guard let original = decoded.messages.first else {
            Issue.record("llhttp did not read \(fields)")
            return
        }
        let nioHead = HTTPRequestHead(
            version: HTTPVersion(major: 1, minor: original.minorVersion), method: HTTPMethod(rawValue: original.method),
            uri: original.uri, headers: HTTPHeaders(original.fields))
        let expected = HeaderRules.backendRequest(nioHead, clientIP: clientIP, isTLS: isTLS, requestID: requestID)
        // The bytes written, read back (a GET's head alone: no body follows
        // in this check, so the length is taken off for the reading).
        let written = NIOReading.requests(raw)
        guard let got = written.messages.first else {
            Issue.record("llhttp did not read what was written: \(String(decoding: raw, as: UTF8.self))")
            return
        }
        #expect(got.method == expected.method.rawValue)
        #expect(got.uri == expected.uri)
        #expect(got.minorVersion == Int(expected.version.minor))
        #expect(Self.fields(got.fields) == Self.fields(expected.headers), "from \(fields)")
    }

    @Test("responses: the client gets the same head both ways, and the same keep-alive")
    func responsesMatch() async {
        let picks = Gen.int(in: 0...(Self.responseFields.count - 1)).array(of: 0...6)
        let lines = Gen.int(in: 0...(Self.statusLines.count - 1))
        await propertyCheck(count: 600, input: lines, picks, Gen.int(in: 0...7)) { line, picks, flags in
            Self.checkResponse(
                line: line, picks: picks, clientMinor: flags & 1, keepAlive: flags & 2 != 0, asksUpgrade: flags & 4 != 0)
        }
    }

    static func checkResponse(line: Int, picks: [Int], clientMinor: Int, keepAlive: Bool, asksUpgrade: Bool) {
        let fields = picks.map { Self.responseFields[$0] }
        let head = Self.bytes(Self.statusLines[line], fields)
        var scanner = HTTPHeadScanner()
        guard case .head(let scanned) = head.withUnsafeBytes({ scanner.scanResponse($0, toHEAD: false) }) else { return }
        var raw: [UInt8] = []
        let (_, rawKeepAlive) = head.withUnsafeBytes {
            HTTPHeadWriter.clientResponse(
                scanned, fields: scanner.fields, of: $0, clientMinorVersion: clientMinor, toHEAD: false,
                keepAlive: keepAlive, asksUpgrade: asksUpgrade, requestID: "rid", backend: "127.0.0.1:9", into: &raw)
        }
        // The NIO path: HTTPProxyHandler.startAnswer's steps.
        var status = 0
        var reason = ""
        var version = 1
        let statusLine = Self.statusLines[line]
        version = statusLine.hasPrefix("HTTP/1.0") ? 0 : 1
        status = Int(statusLine.dropFirst(9).prefix(3))!
        reason = String(statusLine.dropFirst(13))
        let decodedFields: [(String, String)] = fields.map {
            let parts = $0.split(separator: ":", maxSplits: 1)
            return (String(parts[0]), parts[1].trimmingCharacters(in: " "))
        }
        let nioHead = HTTPResponseHead(
            version: HTTPVersion(major: 1, minor: version),
            status: HTTPResponseStatus(statusCode: status, reasonPhrase: reason), headers: HTTPHeaders(decodedFields))
        var expected = HeaderRules.clientResponse(
            nioHead, version: HTTPVersion(major: 1, minor: clientMinor), requestID: "rid", backend: "127.0.0.1:9")
        let delimited = HeaderRules.frameResponse(&expected, requestMethod: .GET)
        let upgrading = asksUpgrade && status == 101
        var expectedKeepAlive = keepAlive
        if !delimited || (asksUpgrade && !upgrading) { expectedKeepAlive = false }
        if !expectedKeepAlive && !upgrading { expected.headers.replaceOrAdd(name: "Connection", value: "close") }
        #expect(rawKeepAlive == expectedKeepAlive, "\(statusLine) \(fields)")
        // What was written, read: the status line and the fields.
        var written = HTTPHeadScanner()
        guard case .head(let got) = raw.withUnsafeBytes({ written.scanResponse($0, toHEAD: true) }) else {
            Issue.record("cannot read what was written: \(String(decoding: raw, as: UTF8.self))")
            return
        }
        #expect(got.status == status)
        #expect(got.minorVersion == clientMinor)
        #expect(String(decoding: raw[got.reason], as: UTF8.self) == reason)
        let gotFields = written.fields.map {
            "\(String(decoding: raw[$0.name], as: UTF8.self)): \(String(decoding: raw[$0.value], as: UTF8.self))"
        }
        #expect(gotFields == Self.fields(expected.headers), "\(statusLine) \(fields)")
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var out = Substring(self)
        while let first = out.first, set.contains(first) { out.removeFirst() }
        while let last = out.last, set.contains(last) { out.removeLast() }
        return String(out)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(self).trimmingCharacters(in: set)
    }
}
