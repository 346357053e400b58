import PropertyBased
import Testing

@testable import ShuttleHTTPWire

/// The scanner checks a target's and a field value's bytes many at a time
/// (a loop the compiler widens); these check it against the byte-at-a-time
/// rules, with a bad byte anywhere in values long enough to be widened.
@Suite("HTTP wire: whole values checked at once agree with the byte classes")
struct HTTPByteClassTests {
    /// Bytes that may end up in a value: mostly good ones, a few of each class.
    static let byte = Gen.int(in: 0...99).map { pick -> UInt8 in
        switch pick {
        case 0: 0x00
        case 1: 0x01
        case 2: 0x7F
        case 3: 0x09
        case 4: 0x20
        case 5: 0x80
        case 6: 0xFF
        case 7: 0x1F
        default: UInt8(0x21 + pick % 94)
        }
    }

    @Test("a field value is taken iff every byte is a value byte, without its trailing whitespace")
    func fieldValues() async {
        await propertyCheck(count: 2000, input: Self.byte.array(of: 0...80)) { value in
            let clean = value.filter { $0 != 0x0D && $0 != 0x0A }
            let head = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Value: ".utf8) + clean + Array("\r\n\r\n".utf8)
            var scanner = HTTPHeadScanner()
            let scan = head.withUnsafeBytes { scanner.scanRequest($0) }
            let good = clean.allSatisfy(HTTPBytes.isValueByte)
            guard case .head = scan else {
                #expect(!good, "refused a good value: \(clean)")
                return
            }
            #expect(good, "took a value with a bad byte: \(clean)")
            var expected = clean[...]
            while let first = expected.first, first == 0x20 || first == 0x09 { expected.removeFirst() }
            while let last = expected.last, last == 0x20 || last == 0x09 { expected.removeLast() }
            #expect(scanner.fields.count == 2)
            if let field = scanner.fields.last { #expect(Array(head[field.value]) == Array(expected)) }
        }
    }

    @Test("a request target is taken iff every byte is visible ASCII")
    func targets() async {
        await propertyCheck(count: 2000, input: Self.byte.array(of: 1...80)) { target in
            let clean = target.filter { $0 != 0x20 && $0 != 0x0D && $0 != 0x0A }
            guard !clean.isEmpty else { return }
            let head = Array("GET ".utf8) + clean + Array(" HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
            var scanner = HTTPHeadScanner()
            let scan = head.withUnsafeBytes { scanner.scanRequest($0) }
            let good = clean.allSatisfy(HTTPBytes.isTargetByte)
            guard case .head(let parsed) = scan else {
                #expect(!good, "refused a good target: \(clean)")
                return
            }
            #expect(good, "took a target with a bad byte: \(clean)")
            #expect(Array(head[parsed.target]) == clean)
        }
    }

    @Test("token bytes are RFC 9110's tchar")
    func tokenBytes() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(HTTPBytes.isTokenByte(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }
}
