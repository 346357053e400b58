import Testing

@testable import ShuttleHTTPWire

/// Scans `text` (its bytes as UTF-8; `\u{..}` for raw control bytes).
func scanRequest(_ text: String, scanner: inout HTTPHeadScanner) -> HTTPHeadScan {
    Array(text.utf8).withUnsafeBytes { scanner.scanRequest($0) }
}

func scanRequest(_ text: String) -> HTTPHeadScan {
    var scanner = HTTPHeadScanner()
    return scanRequest(text, scanner: &scanner)
}

func scanResponse(_ text: String, toHEAD: Bool = false) -> HTTPHeadScan {
    var scanner = HTTPHeadScanner()
    return Array(text.utf8).withUnsafeBytes { scanner.scanResponse($0, toHEAD: toHEAD) }
}

/// The text of `range` of `text`.
func part(_ text: String, _ range: Range<Int>) -> String {
    String(decoding: Array(text.utf8)[range], as: UTF8.self)
}

@Suite("HTTP wire: request and response heads read in place")
struct HTTPHeadScannerTests {
    @Test("a request head: method, target, version, fields and their values without surrounding whitespace")
    func readsARequest() throws {
        let text = "GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept:  */* \t\r\nX-Empty:\r\n\r\nrest"
        var scanner = HTTPHeadScanner()
        guard case .head(let head) = scanRequest(text, scanner: &scanner) else {
            Issue.record("not read")
            return
        }
        #expect(head.length == text.utf8.count - 4)
        #expect(part(text, head.method) == "GET")
        #expect(part(text, head.target) == "/path?q=1")
        #expect(head.minorVersion == 1)
        #expect(part(text, try #require(head.host)) == "example.com")
        #expect(head.framing == .none)
        #expect(head.keepsAlive)
        let fields = scanner.fields.map { (part(text, $0.name), part(text, $0.value)) }
        #expect(fields.map(\.0) == ["Host", "Accept", "X-Empty"])
        #expect(fields.map(\.1) == ["example.com", "*/*", ""])
    }

    @Test("a head that arrives a byte at a time is incomplete until its last byte")
    func arrivesInPieces() {
        let bytes = Array("POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc".utf8)
        var scanner = HTTPHeadScanner()
        for count in 1..<(bytes.count - 3) {
            let scan = bytes[..<count].withUnsafeBytes { scanner.scanRequest($0) }
            #expect(scan == .incomplete, "after \(count) bytes")
        }
        let scan = bytes.withUnsafeBytes { scanner.scanRequest($0) }
        guard case .head(let head) = scan else {
            Issue.record("not read: \(scan)")
            return
        }
        #expect(head.length == bytes.count - 3)
        #expect(head.framing == .length(3))
    }

    @Test("bytes that cannot start a request are refused before a whole head arrives")
    func refusesEarly() {
        // A TLS ClientHello's first bytes: no line end in sight.
        let hello = String(decoding: [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03], as: UTF8.self)
        #expect(scanRequest(hello) == .invalid(.malformed(.requestLine)))
        #expect(scanRequest(" GET / HTTP/1.1\r\n") == .invalid(.malformed(.requestLine)))
        #expect(scanRequest("GE") == .incomplete)
        #expect(scanRequest("\r\nGET /very-long-path") == .incomplete)
    }

    @Test("empty lines before a request are skipped and counted in its length")
    func skipsLeadingEmptyLines() {
        let text = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
        guard case .head(let head) = scanRequest(text) else {
            Issue.record("not read")
            return
        }
        #expect(head.start == 4)
        #expect(head.length == text.utf8.count)
        #expect(part(text, head.method) == "GET")
    }

    @Test(
        "malformed requests are refused with 400, naming what is wrong",
        arguments: [
            ("GET / HTTP/1.1\nHost: a\r\n\r\n", HTTPHeadProblem.Reason.bareLineBreak),
            ("GET / HTTP/1.1\r\nHost: a\n\n", .bareLineBreak),
            ("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", .fieldValue),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{01}b\r\n\r\n", .fieldValue),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{7f}\r\n\r\n", .fieldValue),
            ("GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n", .whitespaceBeforeColon),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", .lineFolding),
            ("GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", .fieldName),
            ("GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", .fieldName),
            ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", .requestLine),
            ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", .requestLine),
            ("GET / http/1.1\r\nHost: a\r\n\r\n", .requestLine),
            ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", .requestLine),
            ("GET /a\u{7f} HTTP/1.1\r\nHost: a\r\n\r\n", .requestLine),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", .contentLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", .contentLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", .contentLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", .contentLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", .contentLength),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", .transferEncoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
             .transferEncoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", .transferEncoding),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
             .lengthAndEncoding),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", .encodingInHTTP10),
            ("GET / HTTP/1.1\r\n\r\n", .missingHost),
            ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", .multipleHosts),
        ])
    func refusesMalformedRequests(text: String, reason: HTTPHeadProblem.Reason) {
        let scan = scanRequest(text)
        #expect(scan == .invalid(.malformed(reason)))
        if case .invalid(let problem) = scan { #expect(problem.status == 400) }
    }

    @Test("a version other than HTTP/1.0 and 1.1 gets 505")
    func refusesOtherVersions() {
        for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9"] {
            let scan = scanRequest("GET / \(version)\r\nHost: a\r\n\r\n")
            #expect(scan == .invalid(.unsupportedVersion), "\(version)")
        }
        #expect(HTTPHeadProblem.unsupportedVersion.status == 505)
    }

    @Test("a head over the limit gets 431, whole or still arriving")
    func refusesLongHeads() {
        var scanner = HTTPHeadScanner(limit: 100)
        let long = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 100)
        #expect(scanRequest(long, scanner: &scanner) == .invalid(.tooLarge))
        #expect(scanRequest(long + "\r\n\r\n", scanner: &scanner) == .invalid(.tooLarge))
        let fits = "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "v", count: 100 - 32) + "\r\n\r\n"
        #expect(fits.utf8.count == 100)
        guard case .head = scanRequest(fits, scanner: &scanner) else {
            Issue.record("a head of exactly the limit is taken")
            return
        }
        #expect(HTTPHeadProblem.tooLarge.status == 431)
    }

    @Test("request framing: a length, chunked after other codings, or none; HTTP/1.0 needs no Host")
    func requestFraming() {
        func framing(_ text: String) -> HTTPBodyFraming? {
            if case .head(let head) = scanRequest(text) { return head.framing }
            return nil
        }
        #expect(framing("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n") == .length(42))
        #expect(framing("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n") == HTTPBodyFraming.none)
        #expect(framing("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n") == .chunked)
        #expect(framing("GET / HTTP/1.0\r\n\r\n") == HTTPBodyFraming.none)
    }

    @Test("Connection tokens, Expect and Upgrade are read; keep-alive follows the version and the tokens")
    func connectionTokens() {
        func head(_ text: String) -> HTTPHead? {
            if case .head(let head) = scanRequest(text) { return head }
            return nil
        }
        let upgrade = head("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade,,x-hop\r\nUpgrade: ws\r\n\r\n")
        #expect(upgrade?.connection == [.keepAlive, .upgrade, .other])
        #expect(upgrade?.hasUpgrade == true)
        #expect(head("GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n")?.keepsAlive == false)
        #expect(head("GET / HTTP/1.0\r\n\r\n")?.keepsAlive == false)
        #expect(head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?.keepsAlive == true)
        #expect(head("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n")?.expectsContinue == true)
        #expect(head("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue-x\r\n\r\n")?.expectsContinue == false)
    }

    @Test("response framing: none after HEAD, 1xx, 204 and 304; a length or chunked, not both; else to the close")
    func responseFraming() {
        func framing(_ text: String, toHEAD: Bool = false) -> HTTPBodyFraming? {
            if case .head(let head) = scanResponse(text, toHEAD: toHEAD) { return head.framing }
            return nil
        }
        #expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n") == .length(7))
        #expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n", toHEAD: true) == HTTPBodyFraming.none)
        #expect(framing("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == HTTPBodyFraming.none)
        #expect(framing("HTTP/1.1 100 Continue\r\n\r\n") == HTTPBodyFraming.none)
        #expect(framing("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n") == HTTPBodyFraming.none)
        #expect(framing("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n") == HTTPBodyFraming.none)
        #expect(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == .chunked)
        #expect(
            scanResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n")
                == .invalid(.malformed(.lengthAndEncoding)))
        #expect(framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n") == .untilClose)
        #expect(
            scanResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n")
                == .invalid(.malformed(.transferEncoding)))
        #expect(framing("HTTP/1.0 200 OK\r\n\r\n") == .untilClose)
        #expect(framing("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n") == .length(1))
        #expect(framing("HTTP/1.1 200 \r\nContent-Length: 1\r\n\r\n") == .length(1))
        #expect(scanResponse("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n") == .invalid(.malformed(.contentLength)))
        #expect(scanResponse("HTTP/1.1 20 OK\r\n\r\n") == .invalid(.malformed(.statusLine)))
        #expect(scanResponse("HTTP/2.0 200 OK\r\n\r\n") == .invalid(.malformed(.statusLine)))
        #expect(scanResponse("HTTP/1.1 200 O\u{01}K\r\n\r\n") == .invalid(.malformed(.statusLine)))
        guard case .head(let head) = scanResponse("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n") else {
            Issue.record("not read")
            return
        }
        #expect(head.status == 404)
        #expect(!head.keepsAlive)
    }
}

@Suite("HTTP wire: where a chunked body ends")
struct ChunkedBodyScannerTests {
    static let body = "5\r\nhello\r\n1a;name=value;x\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: t\r\nX: y\r\n\r\n"

    func progress(_ text: String, scanner: inout ChunkedBodyScanner) -> ChunkedBodyScanner.Progress {
        Array(text.utf8).withUnsafeBytes { scanner.advance(over: $0) }
    }

    @Test("the body ends after its last chunk and trailers, wherever it is cut")
    func endsAfterTrailers() {
        let bytes = Array((Self.body + "NEXT").utf8)
        let end = Self.body.utf8.count
        for cut in 0...end {
            var scanner = ChunkedBodyScanner()
            let first = bytes[..<cut].withUnsafeBytes { scanner.advance(over: $0) }
            if cut < end {
                #expect(first == .more, "cut at \(cut)")
                let second = bytes[cut...].withUnsafeBytes { scanner.advance(over: $0) }
                #expect(second == .ended(end - cut), "cut at \(cut)")
            } else {
                #expect(first == .more || first == .ended(end))
            }
        }
        var scanner = ChunkedBodyScanner()
        #expect(progress("0\r\n\r\n", scanner: &scanner) == .ended(5))
        #expect(scanner.isDone)
    }

    @Test("the data of the chunks, without their framing, wherever the body is cut")
    func handsOnTheData() {
        let bytes = Array(Self.body.utf8)
        for cut in 0...bytes.count {
            var scanner = ChunkedBodyScanner()
            var data: [UInt8] = []
            for piece in [bytes[..<cut], bytes[cut...]] {
                let array = Array(piece)
                _ = array.withUnsafeBytes { raw in
                    scanner.advance(over: raw) { range in data += raw[range] }
                }
            }
            #expect(String(decoding: data, as: UTF8.self) == "helloabcdefghijklmnopqrstuvwxyz", "cut at \(cut)")
        }
    }

    @Test(
        "malformed chunked framing is refused",
        arguments: [
            "5 \r\nhello\r\n0\r\n\r\n",  // whitespace after the size
            "5\nhello\r\n0\r\n\r\n",  // bare LF
            "5\r\nhelloX\r\n0\r\n\r\n",  // no CRLF after the data
            "g\r\n",  // not hex
            "\r\n",  // no size
            "11111111111111111\r\n",  // past 2^60
            "0\r\nX : y\r\n\r\n",  // whitespace before a trailer's colon
            "0\r\nX: a\u{01}\r\n\r\n",  // control byte in a trailer
            "0\r\n\r\r",  // no LF at the end
            "5;a\u{01}\r\nhello\r\n",  // control byte in an extension
        ])
    func refusesMalformedFraming(text: String) {
        var scanner = ChunkedBodyScanner()
        #expect(progress(text, scanner: &scanner) == .invalid)
    }
}
