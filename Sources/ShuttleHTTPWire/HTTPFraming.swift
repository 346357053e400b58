/// What a head's fields say about its message: the body's framing (RFC 9112
/// §6.3), the `Connection` tokens, `Host`, `Expect` and `Upgrade`. One pass
/// over the fields, comparing names by length first.
enum HTTPFraming {
    /// Fills in `head` from `fields`; a problem if the framing is one a
    /// proxy must not guess at.
    static func read(
        _ fields: [HTTPFieldRange], of bytes: UnsafeRawBufferPointer, into head: inout HTTPHead, request: Bool,
        toHEAD: Bool
    ) -> HTTPHeadProblem? {
        var length: UInt64?
        var lengthProblem = false
        var encoded = false
        var chunkedCount = 0
        var chunkedLast = false
        var hosts = 0
        for field in fields {
            switch field.name.count {
            case 14 where HTTPBytes.equals(bytes, field.name, lowercase: "content-length"):
                // One field of digits: repeats and lists are refused, as
                // llhttp refuses them.
                if length != nil { lengthProblem = true }
                length = HTTPBytes.decimal(bytes, field.value)
                if length == nil { lengthProblem = true }
            case 17 where HTTPBytes.equals(bytes, field.name, lowercase: "transfer-encoding"):
                encoded = true
                HTTPBytes.forEachElement(bytes, field.value) { element in
                    chunkedLast = HTTPBytes.equals(bytes, element, lowercase: "chunked")
                    if chunkedLast { chunkedCount += 1 }
                }
            case 10 where HTTPBytes.equals(bytes, field.name, lowercase: "connection"):
                HTTPBytes.forEachElement(bytes, field.value) { element in
                    if HTTPBytes.equals(bytes, element, lowercase: "close") {
                        head.connection.insert(.close)
                    } else if HTTPBytes.equals(bytes, element, lowercase: "keep-alive") {
                        head.connection.insert(.keepAlive)
                    } else if HTTPBytes.equals(bytes, element, lowercase: "upgrade") {
                        head.connection.insert(.upgrade)
                    } else {
                        head.connection.insert(.other)
                    }
                }
            case 4 where request && HTTPBytes.equals(bytes, field.name, lowercase: "host"):
                hosts += 1
                head.host = field.value
            case 6 where request && HTTPBytes.equals(bytes, field.name, lowercase: "expect"):
                if HTTPBytes.equals(bytes, field.value, lowercase: "100-continue") { head.expectsContinue = true }
            case 7 where HTTPBytes.equals(bytes, field.name, lowercase: "upgrade"):
                head.hasUpgrade = true
            default:
                break
            }
        }
        let chunked = encoded && chunkedLast && chunkedCount == 1
        if request {
            if hosts > 1 { return .malformed(.multipleHosts) }
            if hosts == 0 && head.minorVersion >= 1 { return .malformed(.missingHost) }
            if encoded {
                if head.minorVersion == 0 { return .malformed(.encodingInHTTP10) }
                if length != nil || lengthProblem { return .malformed(.lengthAndEncoding) }
                if !chunked { return .malformed(.transferEncoding) }
                head.framing = .chunked
            } else if lengthProblem {
                return .malformed(.contentLength)
            } else if let length, length > 0 {
                head.framing = .length(length)
            }
            return nil
        }
        // A response. Both a transfer coding and a length are refused, as
        // nginx and llhttp refuse them (RFC 9112 lets the coding win, but a
        // backend that sends both is confused or attacked), and so is a
        // malformed length, even where no body follows: after HEAD, 1xx,
        // 204 and 304, whatever the fields say. A coding that does not end
        // in chunked runs to the close, as does a body with neither.
        if encoded && (length != nil || lengthProblem) { return .malformed(.lengthAndEncoding) }
        if lengthProblem { return .malformed(.contentLength) }
        // Chunked twice is not a coding anyone may send (RFC 9112 §6.1),
        // and llhttp reads it as chunked where RFC's rule reads to the close.
        if chunkedCount > 1 { return .malformed(.transferEncoding) }
        if toHEAD || head.status < 200 || head.status == 204 || head.status == 304 { return nil }
        if encoded {
            head.framing = chunked ? .chunked : .untilClose
        } else if let length {
            head.framing = length > 0 ? .length(length) : .none
        } else {
            head.framing = .untilClose
        }
        return nil
    }
}

/// The byte classes and comparisons of HTTP/1.1's grammar.
public enum HTTPBytes {
    /// tchar (RFC 9110 §5.6.2): a bit in one of two masks, for bytes
    /// 0-63 and 64-127 (a switch over the classes took a branch per class).
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        // ! # $ % & ' * + - . and the digits; the letters and ^ _ ` | ~.
        let low: UInt64 = 0x03FF_6CFA_0000_0000
        let high: UInt64 = 0x57FF_FFFF_C7FF_FFFE
        let mask = byte < 64 ? low : high
        return byte < 128 && (mask >> UInt64(byte & 63)) & 1 == 1
    }

    /// A request target's bytes: visible ASCII.
    @inline(__always)
    static func isTargetByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7F
    }

    /// A field value's or reason phrase's bytes: HTAB, SP, visible ASCII
    /// and obs-text; no other control byte, no DEL.
    @inline(__always)
    static func isValueByte(_ byte: UInt8) -> Bool {
        byte == .tab || (byte >= 0x20 && byte != 0x7F)
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        byte >= .zero && byte <= .zero + 9
    }

    /// Whether `range` of `bytes` is `lowercase` in any case (ASCII): a
    /// field name compared in place.
    @inlinable
    public static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        var index = 0
        while index < range.count {
            var byte = bytes[range.lowerBound + index]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != expected[index] { return false }
            index += 1
        }
        return true
    }

    /// 1*DIGIT of at most 18 digits, or nil.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var value: UInt64 = 0
        for index in range {
            let byte = bytes[index]
            guard isDigit(byte) else { return nil }
            value = value * 10 + UInt64(byte &- .zero)
        }
        return value
    }

    /// Calls `body` with each non-empty element of a comma-separated list,
    /// without its surrounding whitespace.
    @inline(__always)
    static func forEachElement(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var index = range.lowerBound
        while index < range.upperBound {
            while index < range.upperBound, bytes[index] == .space || bytes[index] == .tab || bytes[index] == .comma {
                index += 1
            }
            let start = index
            var end = index
            while index < range.upperBound, bytes[index] != .comma {
                if bytes[index] != .space && bytes[index] != .tab { end = index + 1 }
                index += 1
            }
            if end > start { body(start..<end) }
        }
    }
}

extension UInt8 {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ",")
    static let semicolon = UInt8(ascii: ";")
    static let zero = UInt8(ascii: "0")
}
