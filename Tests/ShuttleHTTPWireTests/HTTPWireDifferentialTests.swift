import PropertyBased
import ShuttleTestSupport
import Testing

@testable import ShuttleHTTPWire

@Suite("HTTP wire: every head the scanner takes, NIOHTTP1 takes too and reads the same way")
struct HTTPWireDifferentialTests {
    static let requestLines = [
        "GET / HTTP/1.1", "POST /upload?x=1&y=%20 HTTP/1.1", "HEAD /h HTTP/1.0", "OPTIONS * HTTP/1.1",
        "PATCH http://example.com/a HTTP/1.1", "DELETE /d HTTP/1.0",
        // Refused, by one or both:
        "GET  / HTTP/1.1", "GET / HTTP/1.1 ", "GET / HTTP/2.0", "G@T / HTTP/1.1", "GET /\u{7f} HTTP/1.1",
        "GET / http/1.1", "GET / HTTP/1.2", " GET / HTTP/1.1", "GET /",
    ]

    static let requestFields = [
        "Host: example.com", "host:x", "User-Agent: wrk", "Accept: */*  ", "X-Tab:\tv\t", "X-Empty:",
        "Connection: keep-alive", "Connection: close", "Connection: Upgrade, x-foo", "Upgrade: websocket",
        "Expect: 100-continue", "X-Obs: caf\u{e9}", "Content-Length: 5", "Content-Length: 0", "content-length: 12",
        "Transfer-Encoding: chunked", "transfer-encoding: gzip, chunked", "Transfer-Encoding: Chunked",
        // Refused, by one or both:
        "Content-Length: 5, 5", "Content-Length: +5", "Content-Length: 5x", "Content-Length: ",
        "Transfer-Encoding: chunked, gzip", "Transfer-Encoding: chunked, chunked", "Transfer-Encoding: gzip",
        "Bad Name: x", "X-Space : v", " folded", "X-Ctl: a\u{01}b", "X-Del: a\u{7f}", ":novalue", "X-CR: a\rb",
        "Host: second.example",
    ]

    static let statusLines = [
        "HTTP/1.1 200 OK", "HTTP/1.1 200", "HTTP/1.1 200 ", "HTTP/1.0 404 Not Found", "HTTP/1.1 204 No Content",
        "HTTP/1.1 304 Not Modified", "HTTP/1.1 500 Internal\tServer Error",
        // Refused, by one or both:
        "HTTP/1.1 20 OK", "HTTP/2.0 200 OK", "HTTP/1.1 200 O\u{01}K", "HTTP/1.1  200 OK", "http/1.1 200 OK",
    ]

    static let responseFields = [
        "Server: origin", "Content-Type: text/plain", "Connection: keep-alive", "Connection: close",
        "Content-Length: 5", "Content-Length: 0", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip, chunked",
        "X-Obs: caf\u{e9}", "X-Empty:",
        // Refused, by one or both:
        "Content-Length: 5, 5", "Content-Length: x", "Transfer-Encoding: gzip", "X-Space : v", " folded",
        "X-Ctl: a\u{01}b",
    ]

    /// A chunked encoding of `data` in chunks of `sizes` (cycled), with an
    /// extension on the first chunk and a trailer.
    static func chunked(_ data: [UInt8], sizes: [Int]) -> [UInt8] {
        var out: [UInt8] = []
        var offset = 0
        var turn = 0
        while offset < data.count {
            let size = min(max(1, sizes[turn % sizes.count]), data.count - offset)
            out += Array(String(size, radix: 16).utf8) + (turn == 0 ? Array(";ext=1".utf8) : []) + [13, 10]
            out += data[offset..<(offset + size)] + [13, 10]
            offset += size
            turn += 1
        }
        return out + Array("0\r\nX-Trailer: t\r\n\r\n".utf8)
    }

    /// A head of `start` and `fields`, lines ended with CRLF, or with a bare
    /// LF where `bareLF` says so.
    static func head(_ start: String, _ fields: [String], bareLF: Int) -> [UInt8] {
        var text = start + (bareLF == 0 ? "\n" : "\r\n")
        for (index, field) in fields.enumerated() { text += field + (bareLF == index + 1 ? "\n" : "\r\n") }
        return Array((text + "\r\n").unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
    }

    /// A value without trailing whitespace: llhttp keeps it, RFC 9110 §5.5
    /// says it is not part of the value, and the scanner leaves it out.
    static func trimmed(_ value: String) -> String {
        var value = Substring(value)
        while value.last == " " || value.last == "\t" { value.removeLast() }
        return String(value)
    }

    static func text(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    @Test("requests: what the scanner takes, llhttp takes, with the same head, body and end")
    func requestsAgree() async {
        let picks = Gen.int(in: 0...(Self.requestFields.count - 1)).array(of: 0...6)
        let data = Gen.int(in: 0...255).array(of: 0...40)
        let lines = Gen.int(in: 0...(Self.requestLines.count - 1))
        await propertyCheck(count: 1000, input: lines, picks, data, Gen.int(in: -1...40)) { line, picks, data, bareLF in
            Self.checkRequest(line: line, picks: picks, data: data, bareLF: bareLF)
        }
    }

    /// One case of `requestsAgree` (a function of its own: the compiler's
    /// sendability pass fails on it as a closure).
    static func checkRequest(line: Int, picks: [Int], data: [Int], bareLF: Int) {
        do {
            // Most requests are meant to be taken: the first line is good
            // and there is a Host, half the time.
            let good = data.count % 2 == 0
            let start = good ? Self.requestLines[line % 6] : Self.requestLines[line]
            var fields = picks.map { Self.requestFields[good ? $0 % 18 : $0] }
            if good && !fields.contains(where: { $0.lowercased().hasPrefix("host:") }) { fields.append("Host: h") }
            let head = Self.head(start, fields, bareLF: good ? -1 : bareLF)
            let bodyBytes = data.map { UInt8($0) }
            var scanner = HTTPHeadScanner()
            let scan = head.withUnsafeBytes { scanner.scanRequest($0) }
            guard case .head(let ours) = scan else {
                #expect(!good || !Self.isPlainlyGood(start, fields), "refused a good request: \(scan) \(start) \(fields)")
                return
            }
            // The message as the scanner frames it, then another request
            // to show that both agree on where the first ends.
            var message = head
            switch ours.framing {
            case .none: break
            case .length(let length): message += (0..<Int(length)).map { UInt8($0 & 0xff) }
            case .chunked: message += Self.chunked(bodyBytes, sizes: [3, 7, 1, 16])
            case .untilClose: Issue.record("a request framed to the close")
            }
            let expectedBody: [UInt8] = switch ours.framing {
            case .length(let length): (0..<Int(length)).map { UInt8($0 & 0xff) }
            case .chunked: bodyBytes
            default: []
            }
            if case .chunked = ours.framing {
                var chunks = ChunkedBodyScanner()
                let rest = Array(message[head.count...])
                #expect(rest.withUnsafeBytes { chunks.advance(over: $0) } == .ended(rest.count))
            }
            // llhttp takes nothing after a message that closes the
            // connection or switches it to another protocol.
            let after = ours.keepsAlive && !(ours.connection.contains(.upgrade) && ours.hasUpgrade)
            if after { message += Array("GET /after HTTP/1.1\r\nHost: a\r\n\r\n".utf8) }
            let nio = NIOReading.requests(message)
            #expect(!nio.failed, "llhttp refused what the scanner took: \(start) \(fields)")
            guard nio.messages.count == (after ? 2 : 1), let first = nio.messages.first else {
                Issue.record("llhttp read \(nio.messages.count) messages from \(start) \(fields)")
                return
            }
            #expect(first.method == Self.text(head, ours.method))
            #expect(first.uri == Self.text(head, ours.target))
            #expect(first.minorVersion == ours.minorVersion)
            #expect(first.fields.map(\.0) == scanner.fields.map { Self.text(head, $0.name) })
            #expect(first.fields.map { Self.trimmed($0.1) } == scanner.fields.map { Self.text(head, $0.value) })
            #expect(first.body == expectedBody)
            #expect(first.ended)
            if after { #expect(nio.messages[1].uri == "/after") }
        }
    }

    /// Fields with nothing in them that either parser may refuse.
    static func isPlainlyGood(_ start: String, _ fields: [String]) -> Bool {
        let hosts = fields.filter { $0.lowercased().hasPrefix("host:") }.count
        let lengths = fields.filter { $0.lowercased().hasPrefix("content-length:") }.count
        let encodings = fields.filter { $0.lowercased().hasPrefix("transfer-encoding:") }.count
        // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
        if start.hasSuffix("HTTP/1.0") && encodings > 0 { return false }
        return hosts == 1 && lengths + encodings <= 1
    }

    @Test("responses: what the scanner takes, llhttp takes, with the same head, body and end")
    func responsesAgree() async {
        let picks = Gen.int(in: 0...(Self.responseFields.count - 1)).array(of: 0...5)
        let data = Gen.int(in: 0...255).array(of: 0...40)
        let lines = Gen.int(in: 0...(Self.statusLines.count - 1))
        await propertyCheck(count: 1000, input: lines, picks, data, Gen.int(in: -1...30)) { line, picks, data, bareLF in
            Self.checkResponse(line: line, picks: picks, data: data, bareLF: bareLF)
        }
    }

    /// One case of `responsesAgree`.
    static func checkResponse(line: Int, picks: [Int], data: [Int], bareLF: Int) {
        do {
            let good = data.count % 2 == 0
            let start = good ? Self.statusLines[line % 7] : Self.statusLines[line]
            let fields = picks.map { Self.responseFields[good ? $0 % 10 : $0] }
            let head = Self.head(start, fields, bareLF: good ? -1 : bareLF)
            let bodyBytes = data.map { UInt8($0) }
            var scanner = HTTPHeadScanner()
            let scan = head.withUnsafeBytes { scanner.scanResponse($0, toHEAD: false) }
            guard case .head(let ours) = scan else {
                let lengths = fields.filter { $0.hasPrefix("Content-Length") }.count
                let encodings = fields.filter { $0.hasPrefix("Transfer-Encoding") }.count
                #expect(!good || lengths + encodings > 1, "refused a good response: \(scan) \(start) \(fields)")
                return
            }
            var message = head
            var expectedBody: [UInt8] = []
            var close = false
            switch ours.framing {
            case .none: break
            case .length(let length):
                expectedBody = (0..<Int(length)).map { UInt8($0 & 0xff) }
                message += expectedBody
            case .chunked:
                expectedBody = bodyBytes
                message += Self.chunked(bodyBytes, sizes: [2, 9, 1])
            case .untilClose:
                expectedBody = bodyBytes
                message += bodyBytes
                close = true
            }
            let after = !close && ours.keepsAlive
            if after { message += Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8) }
            let nio = NIOReading.responses(message, requests: after ? 2 : 1, close: close)
            #expect(!nio.failed, "llhttp refused what the scanner took: \(start) \(fields)")
            guard nio.messages.count == (after ? 2 : 1), let first = nio.messages.first else {
                Issue.record("llhttp read \(nio.messages.count) messages from \(start) \(fields)")
                return
            }
            #expect(first.status == ours.status)
            #expect(first.minorVersion == ours.minorVersion)
            #expect(first.fields.map(\.0) == scanner.fields.map { Self.text(head, $0.name) })
            #expect(first.fields.map { Self.trimmed($0.1) } == scanner.fields.map { Self.text(head, $0.value) })
            #expect(first.body == expectedBody)
            #expect(first.ended)
            if after { #expect(nio.messages[1].body == Array("ok".utf8)) }
        }
    }
}
