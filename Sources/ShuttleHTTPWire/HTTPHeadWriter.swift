/// Heads written for the other side of the proxy straight from the bytes
/// they were read from: the field lines the proxy keeps are copied as they
/// came (neighbouring lines in one piece), the hop-by-hop ones are left
/// out, and the proxy's own are appended. The rules are the proxy's header
/// rules (COMPAT.md, "HTTP virtual hosts"), the same as `HeaderRules`
/// applies to NIOHTTP1's decoded heads (`HeadRewriteEquivalenceTests`
/// checks that both give the same fields).
public enum HTTPHeadWriter {
    /// The request as the backend gets it: in HTTP/1.1; hop-by-hop fields
    /// and those `Connection` names left out (an upgrade keeps
    /// `Connection: upgrade` and its `Upgrade`); `Transfer-Encoding:
    /// chunked` again for a chunked body; `X-Forwarded-For` with the client
    /// appended; `X-Forwarded-Proto` unless the client set it;
    /// `X-Request-Id`.
    public static func backendRequest(
        _ head: HTTPHead, fields: [HTTPFieldRange], of bytes: UnsafeRawBufferPointer, clientIP: String?, isTLS: Bool,
        requestID: String, into out: inout [UInt8]
    ) {
        // Room for the head: the kept lines take what they took, and the
        // proxy's own fields under 256 bytes besides the client's address,
        // the values of the X-Forwarded-For lines and the id.
        let room = 2 * head.length + 256 + (clientIP?.utf8.count ?? 0) + requestID.utf8.count
        ByteWriter.append(to: &out, room: room) { w in
            w.put(bytes, head.method)
            w.put(.space)
            w.put(bytes, head.target)
            w.put(literal: " HTTP/1.1\r\n")
            let hasConnection = head.connection != []
            var forwardedFor = false
            var forwardedProto = false
            let upgrade = copyEndToEnd(head, fields, of: bytes, into: &w) { name in
                if HTTPBytes.equals(bytes, name, lowercase: "x-request-id") { return false }
                if clientIP != nil, HTTPBytes.equals(bytes, name, lowercase: "x-forwarded-for") {
                    forwardedFor = true
                    return false
                }
                if HTTPBytes.equals(bytes, name, lowercase: "x-forwarded-proto") { forwardedProto = true }
                return true
            }
            if let upgrade, head.connection.contains(.upgrade) {
                w.put(literal: "Connection: upgrade\r\nUpgrade: ")
                w.put(bytes, upgrade)
                w.put(literal: "\r\n")
            }
            if head.framing == .chunked { w.put(literal: "Transfer-Encoding: chunked\r\n") }
            if clientIP != nil {
                w.put(literal: "X-Forwarded-For: ")
                var first = true
                if forwardedFor {
                    // The values the client sent, in order, then the client.
                    for field in fields where HTTPBytes.equals(bytes, field.name, lowercase: "x-forwarded-for") {
                        if hasConnection && isNamedByConnection(field.name, head.connection, fields: fields, of: bytes) {
                            continue
                        }
                        if !first { w.put(literal: ", ") }
                        w.put(bytes, field.value)
                        first = false
                    }
                }
                if let clientIP {
                    if !first { w.put(literal: ", ") }
                    w.put(clientIP)
                }
                w.put(literal: "\r\n")
            }
            if !forwardedProto { w.put(literal: isTLS ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n") }
            w.put(literal: "X-Request-Id: ")
            w.put(requestID)
            w.put(literal: "\r\n\r\n")
        }
    }

    /// How the body of an answer goes to the client.
    public enum ResponseBody: Equatable, Sendable {
        /// No body follows the head.
        case none
        /// This many bytes, as they come.
        case length(UInt64)
        /// Chunked, as it came.
        case chunked
        /// The backend's body runs to its close: sent in chunks.
        case chunkEncoded
        /// Chunked from the backend, sent to an HTTP/1.0 client as its bytes
        /// alone, and the client's connection closed after it.
        case dechunked
        /// To the backend's close, as it comes; the client's connection is
        /// closed after it.
        case untilClose
    }

    /// The answer as the client gets it: in the client's HTTP version;
    /// hop-by-hop fields and those `Connection` names left out (a 101
    /// keeps `Connection: upgrade` and its `Upgrade`); `X-Request-Id` and
    /// `X-Backend`; framed for the client; and `Connection: close` when the
    /// connection ends after it. Returns how the body goes and whether the
    /// client's connection stays open.
    public static func clientResponse(
        _ head: HTTPHead, fields: [HTTPFieldRange], of bytes: UnsafeRawBufferPointer, clientMinorVersion: Int,
        toHEAD: Bool, keepAlive clientKeepsAlive: Bool, asksUpgrade: Bool, requestID: String, backend: String,
        into out: inout [UInt8]
    ) -> (body: ResponseBody, keepAlive: Bool) {
        // Room for the head: the status line grows by a byte at most (a
        // space before an empty reason), the kept lines and the Upgrade value
        // (from a line not kept) take what they took, and the proxy's own
        // fields under 256 bytes besides the id and the backend's name.
        let room = head.length + 256 + requestID.utf8.count + backend.utf8.count
        return ByteWriter.append(to: &out, room: room) { w -> (body: ResponseBody, keepAlive: Bool) in
            w.put(literal: clientMinorVersion >= 1 ? "HTTP/1.1 " : "HTTP/1.0 ")
            w.putStatus(head.status)
            w.put(.space)
            w.put(bytes, head.reason)
            w.put(literal: "\r\n")
            let switching = head.status == 101
            // Framing: no body after HEAD, 1xx, 204 and 304; a length is kept;
            // else chunked for an HTTP/1.1 client, or the close for 1.0.
            let noBody = head.status < 200 || head.status == 204
            var body: ResponseBody
            var hasLength = false
            if noBody || toHEAD || head.status == 304 {
                body = .none
            } else {
                switch head.framing {
                case .none: body = .none
                case .length(let count): body = .length(count)
                case .chunked: body = clientMinorVersion >= 1 ? .chunked : .dechunked
                case .untilClose: body = clientMinorVersion >= 1 ? .chunkEncoded : .untilClose
                }
            }
            let upgrade = copyEndToEnd(head, fields, of: bytes, into: &w) { name in
                if HTTPBytes.equals(bytes, name, lowercase: "x-request-id")
                    || HTTPBytes.equals(bytes, name, lowercase: "x-backend")
                {
                    return false
                }
                if HTTPBytes.equals(bytes, name, lowercase: "content-length") {
                    if noBody { return false }
                    hasLength = true
                }
                return true
            }
            let upgrading = asksUpgrade && switching
            if switching, let upgrade {
                // `Connection: close` below takes the place of `upgrade`.
                if upgrading || clientKeepsAlive { w.put(literal: "Connection: upgrade\r\n") }
                w.put(literal: "Upgrade: ")
                w.put(bytes, upgrade)
                w.put(literal: "\r\n")
            }
            w.put(literal: "X-Request-Id: ")
            w.put(requestID)
            w.put(literal: "\r\nX-Backend: ")
            w.put(backend)
            w.put(literal: "\r\n")
            // Framed as `HeaderRules.frameResponse` frames it: a length is kept;
            // else chunked for an HTTP/1.1 client; for 1.0, only the close ends it.
            var delimited = true
            if !(noBody || toHEAD || head.status == 304 || hasLength) {
                if clientMinorVersion >= 1 {
                    w.put(literal: "Transfer-Encoding: chunked\r\n")
                } else {
                    delimited = false
                }
            }
            let keepAlive = clientKeepsAlive && delimited && !(asksUpgrade && !upgrading)
            if !keepAlive && !upgrading { w.put(literal: "Connection: close\r\n") }
            w.put(literal: "\r\n")
            return (body, keepAlive)
        }
    }

    // MARK: Pieces

    /// Copies the end-to-end field lines `keeps` takes (by name), as they
    /// came: not the hop-by-hop ones, nor those the `Connection` tokens name.
    /// Returns the first `Upgrade` value, which is hop-by-hop: each writer
    /// decides whether it goes on.
    @inline(__always)
    static func copyEndToEnd(
        _ head: HTTPHead, _ fields: [HTTPFieldRange], of bytes: UnsafeRawBufferPointer, into w: inout ByteWriter,
        keeps: (Range<Int>) -> Bool
    ) -> Range<Int>? {
        let hasConnection = head.connection != []
        var upgrade: Range<Int>?
        var lines = KeptLines(head, fields)
        for (index, field) in fields.enumerated() {
            if isHopByHop(bytes, field.name) {
                if upgrade == nil, HTTPBytes.equals(bytes, field.name, lowercase: "upgrade") { upgrade = field.value }
                continue
            }
            if hasConnection && isNamedByConnection(field.name, head.connection, fields: fields, of: bytes) { continue }
            if keeps(field.name) { lines.keep(index, bytes, into: &w) }
        }
        lines.flush(bytes, into: &w)
        return upgrade
    }

    /// The hop-by-hop fields (RFC 9110 §7.6.1), by length first.
    @inline(__always)
    static func isHopByHop(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        switch name.count {
        case 2: return HTTPBytes.equals(bytes, name, lowercase: "te")
        case 7:
            return HTTPBytes.equals(bytes, name, lowercase: "trailer") || HTTPBytes.equals(bytes, name, lowercase: "upgrade")
        case 10:
            return HTTPBytes.equals(bytes, name, lowercase: "connection")
                || HTTPBytes.equals(bytes, name, lowercase: "keep-alive")
        case 16: return HTTPBytes.equals(bytes, name, lowercase: "proxy-connection")
        case 17: return HTTPBytes.equals(bytes, name, lowercase: "transfer-encoding")
        case 18: return HTTPBytes.equals(bytes, name, lowercase: "proxy-authenticate")
        case 19: return HTTPBytes.equals(bytes, name, lowercase: "proxy-authorization")
        default: return false
        }
    }

    /// Whether a token of a `Connection` field names the field `name`.
    /// `Content-Length` and `Host` are never removed that way: a request
    /// that lost its length would reach the backend with its body unframed
    /// (request smuggling), one that lost its Host could not be routed.
    static func isNamedByConnection(
        _ name: Range<Int>, _ tokens: HTTPConnectionTokens, fields: [HTTPFieldRange], of bytes: UnsafeRawBufferPointer
    ) -> Bool {
        // Only `close`, `keep-alive` and `upgrade` (nearly every head): the
        // last two are hop-by-hop already, so only a field named `close`
        // is left to find, without reading the tokens again.
        if !tokens.contains(.other) {
            return tokens.contains(.close) && HTTPBytes.equals(bytes, name, lowercase: "close")
        }
        if HTTPBytes.equals(bytes, name, lowercase: "content-length") || HTTPBytes.equals(bytes, name, lowercase: "host") {
            return false
        }
        for field in fields where HTTPBytes.equals(bytes, field.name, lowercase: "connection") {
            var named = false
            HTTPBytes.forEachElement(bytes, field.value) { token in
                if !named && HTTPBytes.sameIgnoringCase(bytes, token, name) { named = true }
            }
            if named { return true }
        }
        return false
    }
}

/// The field lines a head writer keeps, copied as they came, with their
/// CRLF: a run of neighbouring lines in one piece (a head that loses only
/// its `Connection` line is copied in two), not a copy per name, colon,
/// value and line end. A line runs from its name to the next line's name;
/// the last one to the blank line (the scanner takes no folded lines and
/// no lone CR or LF, so nothing else lies between).
private struct KeptLines {
    let fields: [HTTPFieldRange]
    /// Where the last field line ends: the blank line's start.
    let lastEnd: Int
    /// Kept lines not yet written.
    var run: Range<Int>?

    init(_ head: HTTPHead, _ fields: [HTTPFieldRange]) {
        self.fields = fields
        lastEnd = head.length - 2
    }

    /// Keeps `fields[index]`'s line.
    @inline(__always)
    mutating func keep(_ index: Int, _ bytes: UnsafeRawBufferPointer, into w: inout ByteWriter) {
        let start = fields[index].name.lowerBound
        let end = index + 1 < fields.count ? fields[index + 1].name.lowerBound : lastEnd
        if let kept = run, kept.upperBound == start {
            run = kept.lowerBound..<end
        } else {
            flush(bytes, into: &w)
            run = start..<end
        }
    }

    /// Writes the kept lines not yet written.
    @inline(__always)
    mutating func flush(_ bytes: UnsafeRawBufferPointer, into w: inout ByteWriter) {
        if let kept = run { w.put(bytes, kept) }
        run = nil
    }
}

extension ByteWriter {
    mutating func putStatus(_ status: Int) {
        put(.zero + UInt8(status / 100 % 10))
        put(.zero + UInt8(status / 10 % 10))
        put(.zero + UInt8(status % 10))
    }
}

extension HTTPBytes {
    /// Whether two ranges of `bytes` are the same in any case (ASCII).
    static func sameIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        var index = 0
        while index < a.count {
            var x = bytes[a.lowerBound + index]
            var y = bytes[b.lowerBound + index]
            if x >= UInt8(ascii: "A") && x <= UInt8(ascii: "Z") { x |= 0x20 }
            if y >= UInt8(ascii: "A") && y <= UInt8(ascii: "Z") { y |= 0x20 }
            if x != y { return false }
            index += 1
        }
        return true
    }
}
