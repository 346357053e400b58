import Testing

@testable import ShuttleHTTPWire

@Suite("HTTP wire: bytes written into room made once")
struct ByteWriterTests {
    @Test("what is written follows what was there, and the unused room is given back")
    func appends() {
        var out: [UInt8] = Array("before|".utf8)
        let written = ByteWriter.append(to: &out, room: 64) { w -> Int in
            w.put(literal: "GET ")
            w.put("/café")
            w.put(UInt8(ascii: " "))
            w.put(decimal: 0)
            w.put(UInt8(ascii: " "))
            w.put(decimal: -1_234_567_890_123)
            w.put(UInt8(ascii: " "))
            w.put(decimal: Int64.max)
            Array("[raw]".utf8).withUnsafeBytes { w.put($0, 1..<4) }
            return w.count
        }
        let expected = "GET /café 0 -1234567890123 9223372036854775807raw"
        #expect(String(decoding: out, as: UTF8.self) == "before|" + expected)
        #expect(written == expected.utf8.count)
    }

    @Test("a head of many short fields fits the room the writer makes, each line as it came")
    func shortFieldsGrow() throws {
        let fields = (0..<2_000).map { "x\($0 % 10):\($0 % 7)" }
        let text = "GET / HTTP/1.1\r\nHost:a\r\n" + fields.joined(separator: "\r\n") + "\r\n\r\n"
        var scanner = HTTPHeadScanner(limit: 1 << 20)
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        try bytes.withUnsafeBytes { raw in
            guard case .head(let head) = scanner.scanRequest(raw) else {
                Issue.record("not a head")
                return
            }
            HTTPHeadWriter.backendRequest(
                head, fields: scanner.fields, of: raw, clientIP: "10.0.0.1", isTLS: false, requestID: "id1", into: &out)
            _ = try #require(head.length == bytes.count)
        }
        let written = String(decoding: out, as: UTF8.self)
        #expect(written.hasPrefix("GET / HTTP/1.1\r\nHost:a\r\nx0:0\r\nx1:1\r\n"))
        #expect(written.contains("\r\nx9:4\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\nX-Request-Id: id1\r\n\r\n"))
        #expect(written.components(separatedBy: "\r\n").count == 2_000 + 5 + 2)
    }
}
