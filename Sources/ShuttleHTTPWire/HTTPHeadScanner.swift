#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// HTTP/1.1 message heads read in place, from the bytes a socket gave:
/// where the request line, the status and each field lie, and how the body
/// that follows is framed. Nothing is copied and nothing allocated per
/// message (the field list keeps its room from one head to the next).
///
/// This is the reading a proxy needs to forward a head as bytes, with its
/// hop-by-hop fields cut out, instead of decoding it into strings and
/// encoding it again: what NIOHTTP1 does, and most of a keep-alive
/// request's cost in user space (see `bench/`'s notes in the README).
///
/// The rules are RFC 9112's, read strictly wherever a lenient reading lets
/// two parsers disagree on where a message ends (request smuggling):
/// lines end in CRLF, never a bare CR or LF; no whitespace before a
/// field's colon; no line folding; no control bytes in values; a request
/// with both `Transfer-Encoding` and `Content-Length`, with differing
/// lengths, with a transfer coding that does not end in `chunked`, or with
/// `Transfer-Encoding` in HTTP/1.0 is refused. Every head this scanner takes,
/// NIOHTTP1's llhttp takes too, and reads the same way
/// (`HTTPWireDifferentialTests`).
public struct HTTPHeadScanner {
    /// The longest head taken, through its blank line.
    public let limit: Int
    /// Each field of the last head scanned, in order.
    public private(set) var fields: [HTTPFieldRange] = []
    /// How far the bytes were searched for the end of the head without
    /// finding it: a head that arrives in pieces is searched once, not
    /// again from its start for every piece.
    private var searched = 0
    /// A line with something in it was seen in what was searched.
    private var startSeen = false
    /// Where the line being searched starts.
    private var lineStart = 0

    public init(limit: Int = 64 * 1024) {
        self.limit = limit
        fields.reserveCapacity(32)
    }

    /// Reads the request head at the start of `bytes`. Empty lines before
    /// it are skipped (RFC 9112 §2.2), and counted in its `length`.
    public mutating func scanRequest(_ bytes: UnsafeRawBufferPointer) -> HTTPHeadScan {
        scan(bytes, request: true, toHEAD: false)
    }

    /// Reads the response head at the start of `bytes`, the answer to a
    /// request whose method was HEAD if `toHEAD`.
    public mutating func scanResponse(_ bytes: UnsafeRawBufferPointer, toHEAD: Bool) -> HTTPHeadScan {
        scan(bytes, request: false, toHEAD: toHEAD)
    }

    /// Forgets a head searched in part (the connection moved on).
    public mutating func reset() {
        searched = 0
        startSeen = false
        lineStart = 0
    }

    private mutating func scan(_ bytes: UnsafeRawBufferPointer, request: Bool, toHEAD: Bool) -> HTTPHeadScan {
        let end: Int
        switch findEnd(bytes) {
        case .incomplete:
            guard bytes.count < limit else {
                reset()
                return .invalid(.tooLarge)
            }
            // Bytes that cannot start a request (a TLS hello on the plain
            // port) are refused now, not when the limit is reached.
            if request && !Self.mayStartRequest(bytes) {
                reset()
                return .invalid(.malformed(.requestLine))
            }
            return .incomplete
        case .malformed:
            reset()
            return .invalid(.malformed(.bareLineBreak))
        case .end(let found):
            reset()
            if found > limit { return .invalid(.tooLarge) }
            end = found
        }
        fields.removeAll(keepingCapacity: true)
        var head = HTTPHead(length: end)
        var reader = LineReader(bytes: bytes, end: end)
        if request {
            // Empty lines before a request (after a body, from a client
            // that counted its CRLF in) are skipped.
            while reader.position + 1 < end, bytes[reader.position] == .cr, bytes[reader.position + 1] == .lf {
                reader.position += 2
            }
            head.start = reader.position
            if let problem = reader.requestLine(into: &head) { return .invalid(problem) }
        } else {
            if let problem = reader.statusLine(into: &head) { return .invalid(problem) }
        }
        while reader.position < end - 2 {
            switch reader.field() {
            case .success(let field): fields.append(field)
            case .failure(let problem): return .invalid(problem)
            }
        }
        if let problem = HTTPFraming.read(fields, of: bytes, into: &head, request: request, toHEAD: toHEAD) {
            return .invalid(problem)
        }
        return .head(head)
    }

    private enum End {
        case incomplete
        case end(Int)
        /// A line ends in a bare LF: the head is refused at once rather
        /// than waited for until it reaches the limit.
        case malformed
    }

    /// Whether the first bytes can be the start of a request line: empty
    /// lines, then a method's token characters up to a space. Only the
    /// first 32 bytes are looked at, each time a head is still incomplete.
    static func mayStartRequest(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = min(bytes.count, 32)
        var index = 0
        while index < count, bytes[index] == .cr || bytes[index] == .lf { index += 1 }
        let methodStart = index
        while index < count {
            let byte = bytes[index]
            if byte == .space { return index > methodStart }
            if !HTTPBytes.isTokenByte(byte) { return false }
            index += 1
        }
        return true
    }

    /// Where the head's blank line ends, searching on from where the last
    /// call stopped, line end to line end (memchr finds them).
    private mutating func findEnd(_ bytes: UnsafeRawBufferPointer) -> End {
        let count = min(bytes.count, limit + 1)
        guard count > searched, let base = bytes.baseAddress else { return .incomplete }
        var index = searched
        while index < count, let found = memchr(base + index, 0x0A, count - index) {
            let lf = base.distance(to: UnsafeRawPointer(found))
            if lf == 0 || bytes[lf - 1] != .cr { return .malformed }
            if lf - 1 > lineStart {
                startSeen = true
            } else if startSeen {
                // An empty line after the start line: the end.
                return .end(lf + 1)
            }
            lineStart = lf + 1
            index = lf + 1
        }
        searched = count
        return .incomplete
    }
}

/// A field's name and value, as offsets into the head's bytes. The value
/// has no leading or trailing whitespace.
public struct HTTPFieldRange: Equatable, Sendable {
    public var name: Range<Int>
    public var value: Range<Int>

    public init(name: Range<Int>, value: Range<Int>) {
        self.name = name
        self.value = value
    }
}

/// How the body after a head is delimited (RFC 9112 §6).
public enum HTTPBodyFraming: Equatable, Sendable {
    /// No body: the next message starts right after the head.
    case none
    case length(UInt64)
    case chunked
    /// A response whose body ends when the backend closes.
    case untilClose
}

/// What a scan found.
public enum HTTPHeadScan: Equatable, Sendable {
    /// The head has not all arrived.
    case incomplete
    case head(HTTPHead)
    case invalid(HTTPHeadProblem)
}

/// A head that is read: where its parts lie in the bytes scanned.
public struct HTTPHead: Equatable, Sendable {
    /// Bytes from the start of the buffer through the blank line.
    public var length: Int
    /// Where the start line begins (after skipped empty lines).
    public var start = 0
    /// A request's method and target.
    public var method: Range<Int> = 0..<0
    public var target: Range<Int> = 0..<0
    /// A response's status code and reason phrase.
    public var status = 0
    public var reason: Range<Int> = 0..<0
    /// The `x` of HTTP/1.x.
    public var minorVersion = 1
    public var framing = HTTPBodyFraming.none
    /// The tokens of the `Connection` fields.
    public var connection = HTTPConnectionTokens()
    /// A request's `Host` value (its only one).
    public var host: Range<Int>?
    /// A request with `Expect: 100-continue`.
    public var expectsContinue = false
    /// An `Upgrade` field is present.
    public var hasUpgrade = false

    public init(length: Int) {
        self.length = length
    }

    /// The connection stays open after this message, by its version and
    /// `Connection` tokens.
    public var keepsAlive: Bool {
        if connection.contains(.close) { return false }
        return minorVersion >= 1 || connection.contains(.keepAlive)
    }
}

/// The `Connection` tokens that mean something to a proxy.
public struct HTTPConnectionTokens: OptionSet, Equatable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let close = HTTPConnectionTokens(rawValue: 1)
    public static let keepAlive = HTTPConnectionTokens(rawValue: 2)
    public static let upgrade = HTTPConnectionTokens(rawValue: 4)
    /// Another token: a field name to remove before forwarding.
    public static let other = HTTPConnectionTokens(rawValue: 8)
}

/// Why a head is refused; `status` is the answer to a client's request.
public enum HTTPHeadProblem: Error, Equatable, Sendable {
    /// Longer than the scanner's limit (431 for a request).
    case tooLarge
    case malformed(Reason)
    /// Not HTTP/1.0 or 1.1 (505).
    case unsupportedVersion

    public enum Reason: String, Equatable, Sendable {
        case bareLineBreak = "a line ends without CRLF"
        case requestLine = "malformed request line"
        case statusLine = "malformed status line"
        case fieldName = "malformed field name"
        case whitespaceBeforeColon = "whitespace before a field's colon"
        case lineFolding = "obsolete line folding"
        case fieldValue = "control character in a field value"
        case contentLength = "malformed or conflicting Content-Length"
        case transferEncoding = "Transfer-Encoding that does not end in chunked"
        case lengthAndEncoding = "both Transfer-Encoding and Content-Length"
        case encodingInHTTP10 = "Transfer-Encoding in an HTTP/1.0 request"
        case missingHost = "no Host in an HTTP/1.1 request"
        case multipleHosts = "more than one Host"
    }

    /// The status a client is answered with.
    public var status: Int {
        switch self {
        case .tooLarge: 431
        case .malformed: 400
        case .unsupportedVersion: 505
        }
    }
}

/// Reads a head's lines; `position` is at the start of the next one.
private struct LineReader {
    let bytes: UnsafeRawBufferPointer
    /// Just past the head's blank line.
    let end: Int
    var position = 0

    init(bytes: UnsafeRawBufferPointer, end: Int) {
        self.bytes = bytes
        self.end = end
    }

    /// method SP request-target SP HTTP-version CRLF
    mutating func requestLine(into head: inout HTTPHead) -> HTTPHeadProblem? {
        let methodStart = position
        while position < end, HTTPBytes.isTokenByte(bytes[position]) { position += 1 }
        guard position > methodStart, position < end, bytes[position] == .space else {
            return .malformed(.requestLine)
        }
        head.method = methodStart..<position
        position += 1
        // The target runs to the next space, all of it visible ASCII.
        let targetStart = position
        guard let space = find(.space, from: position),
            space > targetStart, Self.allTargetBytes(bytes, targetStart..<space)
        else {
            return .malformed(.requestLine)
        }
        position = space
        head.target = targetStart..<position
        position += 1
        switch version() {
        case .some(let minor): head.minorVersion = minor
        case .none: return .malformed(.requestLine)
        }
        if head.minorVersion < 0 { return .unsupportedVersion }
        return lineEnd() ? nil : .malformed(.requestLine)
    }

    /// HTTP-version SP 3DIGIT SP [reason-phrase] CRLF; the space before an
    /// empty reason may be missing, as some servers send it.
    mutating func statusLine(into head: inout HTTPHead) -> HTTPHeadProblem? {
        guard let minor = version(), minor >= 0, position < end, bytes[position] == .space else {
            return .malformed(.statusLine)
        }
        head.minorVersion = minor
        position += 1
        var status = 0
        for _ in 0..<3 {
            guard position < end, HTTPBytes.isDigit(bytes[position]) else { return .malformed(.statusLine) }
            status = status * 10 + Int(bytes[position] &- .zero)
            position += 1
        }
        guard status >= 100 else { return .malformed(.statusLine) }
        head.status = status
        if position < end, bytes[position] == .space {
            position += 1
            let reasonStart = position
            while position < end, HTTPBytes.isValueByte(bytes[position]) { position += 1 }
            head.reason = reasonStart..<position
        } else {
            head.reason = position..<position
        }
        return lineEnd() ? nil : .malformed(.statusLine)
    }

    /// "HTTP/" DIGIT "." DIGIT: the minor version, -1 for a version
    /// other than 1.0 and 1.1, nil if it is not a version.
    private mutating func version() -> Int? {
        guard position + 8 <= end else { return nil }
        guard bytes[position] == UInt8(ascii: "H"), bytes[position + 1] == UInt8(ascii: "T"),
            bytes[position + 2] == UInt8(ascii: "T"), bytes[position + 3] == UInt8(ascii: "P"),
            bytes[position + 4] == UInt8(ascii: "/"), HTTPBytes.isDigit(bytes[position + 5]),
            bytes[position + 6] == UInt8(ascii: "."), HTTPBytes.isDigit(bytes[position + 7])
        else { return nil }
        let major = bytes[position + 5] &- .zero
        let minor = Int(bytes[position + 7] &- .zero)
        position += 8
        return major == 1 && minor <= 1 ? minor : -1
    }

    /// Where the next `byte` is, before the head's end.
    private func find(_ byte: UInt8, from start: Int) -> Int? {
        guard start < end, let base = bytes.baseAddress, let found = memchr(base + start, Int32(byte), end - start) else {
            return nil
        }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// Whether every byte of `range` is a field value's (`isValueByte`):
    /// looked at without branches or an early exit, a loop the compiler
    /// widens to 32 bytes a step.
    private static func allValueBytes(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        var outside: UInt8 = 0
        for byte in UnsafeRawBufferPointer(rebasing: bytes[range]) {
            outside |= ((byte < 0x20 ? 1 : 0) & (byte != .tab ? 1 : 0)) | (byte == 0x7F ? 1 : 0)
        }
        return outside == 0
    }

    /// Whether every byte of `range` is a request target's (`isTargetByte`).
    private static func allTargetBytes(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        var outside: UInt8 = 0
        for byte in UnsafeRawBufferPointer(rebasing: bytes[range]) { outside |= byte &- 0x21 > 0x5D ? 1 : 0 }
        return outside == 0
    }

    private mutating func lineEnd() -> Bool {
        guard position + 1 < end, bytes[position] == .cr, bytes[position + 1] == .lf else { return false }
        position += 2
        return true
    }

    /// field-name ":" OWS field-value OWS CRLF
    mutating func field() -> Result<HTTPFieldRange, HTTPHeadProblem> {
        let nameStart = position
        if bytes[position] == .space || bytes[position] == .tab { return .failure(.malformed(.lineFolding)) }
        while position < end, HTTPBytes.isTokenByte(bytes[position]) { position += 1 }
        let nameEnd = position
        guard position < end, bytes[position] == .colon else {
            if position < end, bytes[position] == .space || bytes[position] == .tab {
                return .failure(.malformed(.whitespaceBeforeColon))
            }
            return .failure(.malformed(.fieldName))
        }
        guard nameEnd > nameStart else { return .failure(.malformed(.fieldName)) }
        position += 1
        while position < end, bytes[position] == .space || bytes[position] == .tab { position += 1 }
        // The value runs to the line's CR (every LF has one before it), all
        // of it value bytes; its trailing whitespace is not part of it.
        let valueStart = position
        guard let cr = find(.cr, from: position), Self.allValueBytes(bytes, valueStart..<cr) else {
            return .failure(.malformed(.fieldValue))
        }
        var valueEnd = cr
        while valueEnd > valueStart, bytes[valueEnd - 1] == .space || bytes[valueEnd - 1] == .tab { valueEnd -= 1 }
        position = cr
        guard lineEnd() else { return .failure(.malformed(.fieldValue)) }
        return .success(HTTPFieldRange(name: nameStart..<nameEnd, value: valueStart..<valueEnd))
    }
}
