import NIOHTTP1

/// The header rules of the proxy (COMPAT.md, "HTTP virtual hosts"): what
/// changes between the client and the backend, both ways.
enum HeaderRules {
    /// Hop-by-hop headers (RFC 9110 7.6.1), never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Headers a `Connection` token never removes. Without its
    /// `Content-Length`, a request's body reached the backend unframed and
    /// was read there as a request of its own, which the proxy never saw
    /// (request smuggling); without `Host` it could not be routed.
    static let kept: Set<String> = ["content-length", "host"]

    /// Removes the hop-by-hop headers, and those that `Connection` names
    /// (but for `kept`). An upgrade (WebSocket) keeps `Connection: upgrade`
    /// and `Upgrade`. One pass finds what is there (usually `Connection`
    /// alone, or nothing), so that only those names are removed.
    static func removeHopByHop(_ headers: inout HTTPHeaders, keepUpgrade: Bool) {
        var found: [String] = []
        var upgrade: String?
        for (name, value) in headers where mayBeHopByHop(name) {
            let lowered = name.lowercased()
            guard hopByHop.contains(lowered) else { continue }
            if !found.contains(lowered) { found.append(lowered) }
            if lowered == "upgrade", upgrade == nil { upgrade = value }
            if lowered == "connection" {
                for token in value.split(separator: ",") {
                    let named = token.trimmingSpaces().lowercased()
                    if !named.isEmpty && !found.contains(named) && !kept.contains(named) { found.append(named) }
                }
            }
        }
        guard !found.isEmpty else { return }
        for name in found { headers.removeIfPresent(name) }
        if keepUpgrade, let protocolName = upgrade {
            headers.replaceOrAdd(name: "Connection", value: "upgrade")
            headers.replaceOrAdd(name: "Upgrade", value: protocolName)
        }
    }

    /// The lengths of the hop-by-hop names: a cheap test before lowercasing.
    @inline(__always)
    private static func mayBeHopByHop(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2, 7, 10, 16, 17, 18, 19: return true
        default: return false
        }
    }

    /// Whether the request asks to switch protocols (`Connection: upgrade`).
    static func isUpgrade(_ head: HTTPRequestHead) -> Bool {
        // Upgrade first: looking at it builds nothing, where splitting the
        // Connection header into its tokens allocates (every
        // `Connection: close` request paid that for nothing).
        head.headers.contains(name: "upgrade")
            && head.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }

    /// The request as the backend gets it: hop-by-hop headers removed,
    /// `X-Forwarded-For` appended, `X-Forwarded-Proto` set when absent,
    /// `X-Request-Id` set to `id`. Keeps the client's HTTP version.
    static func backendRequest(_ head: HTTPRequestHead, clientIP: String?, isTLS: Bool, requestID: String) -> HTTPRequestHead {
        var out = head
        let upgrade = isUpgrade(head)
        let chunked = head.headers.contains(name: "transfer-encoding") && !head.headers.contains(name: "content-length")
        removeHopByHop(&out.headers, keepUpgrade: upgrade)
        // The body is framed anew: chunked when its length is unknown (the
        // encoder would send a GET's body unframed otherwise).
        if chunked { out.headers.add(name: "Transfer-Encoding", value: "chunked") }
        if let clientIP {
            let prior = out.headers["x-forwarded-for"].joined(separator: ", ")
            out.headers.replaceOrAdd(name: "X-Forwarded-For", value: prior.isEmpty ? clientIP : "\(prior), \(clientIP)")
        }
        if !out.headers.contains(name: "x-forwarded-proto") {
            out.headers.add(name: "X-Forwarded-Proto", value: isTLS ? "https" : "http")
        }
        out.headers.replaceOrAdd(name: "X-Request-Id", value: requestID)
        // HTTP/1.0 clients are spoken for in 1.1 upstream, for keep-alive.
        if out.version.major == 1 && out.version.minor == 0 { out.version = .http1_1 }
        return out
    }

    /// The request id: a new 16-hex-digit id, prefixed to any the client sent
    /// (`NEW.OLD`).
    static func requestID(for head: HTTPRequestHead, random: UInt64) -> String {
        let fresh = hex16(random)
        if let old = head.headers.first(name: "x-request-id"), !old.isEmpty { return "\(fresh).\(old)" }
        return fresh
    }

    /// 16 lower-case hex digits, zero-padded.
    static func hex16(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var rest = value
            for i in stride(from: 15, through: 0, by: -1) {
                buffer[i] = digits.utf8Start[Int(rest & 0xf)]
                rest >>= 4
            }
            return 16
        }
    }

    /// The response as the client gets it: in the client's HTTP version,
    /// hop-by-hop headers removed, `X-Request-Id` and `X-Backend` added.
    static func clientResponse(
        _ head: HTTPResponseHead, version: HTTPVersion, requestID: String, backend: String
    ) -> HTTPResponseHead {
        var out = head
        out.version = version
        removeHopByHop(&out.headers, keepUpgrade: head.status == .switchingProtocols)
        out.headers.replaceOrAdd(name: "X-Request-Id", value: requestID)
        out.headers.replaceOrAdd(name: "X-Backend", value: backend)
        return out
    }

    /// Frames an answer for the client (the encoder is told to leave the
    /// framing to us, as only we know the request's method): no body for
    /// HEAD, 1xx, 204 and 304; the backend's `Content-Length` if it gave
    /// one; else chunked for HTTP/1.1. Returns false when only the end of
    /// the connection can end the body (an HTTP/1.0 client).
    static func frameResponse(_ head: inout HTTPResponseHead, requestMethod: HTTPMethod) -> Bool {
        let status = head.status.code
        head.headers.removeIfPresent("transfer-encoding")
        if (100..<200).contains(status) || status == 204 {
            head.headers.removeIfPresent("content-length")
            return true
        }
        if requestMethod == .HEAD || status == 304 { return true }
        if head.headers.contains(name: "content-length") { return true }
        if head.version.major == 1 && head.version.minor >= 1 {
            head.headers.add(name: "Transfer-Encoding", value: "chunked")
            return true
        }
        return false
    }

    /// How many `Host` lines `headers` has (without making an array).
    static func hostFields(_ headers: HTTPHeaders) -> Int {
        var count = 0
        for (name, _) in headers where name.utf8.count == 4 {
            var utf8 = name.utf8.makeIterator()
            if utf8.next().map({ $0 | 0x20 }) == UInt8(ascii: "h"), utf8.next().map({ $0 | 0x20 }) == UInt8(ascii: "o"),
                utf8.next().map({ $0 | 0x20 }) == UInt8(ascii: "s"), utf8.next().map({ $0 | 0x20 }) == UInt8(ascii: "t")
            {
                count += 1
            }
        }
        return count
    }

    /// Methods safe to send twice (RFC 9110 9.2.2).
    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        isIdempotent(method: method.rawValue)
    }

    /// `isIdempotent` for a method as received (case matters, as in
    /// `HTTPMethod(rawValue:)`), compared without making an `HTTPMethod`.
    static func isIdempotent(method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE": return true
        default: return false
        }
    }
}

extension HTTPHeaders {
    /// Removes the headers of a name, without touching (and so copying,
    /// when shared) the headers when there is none.
    mutating func removeIfPresent(_ name: String) {
        if contains(name: name) { remove(name: name) }
    }
}

extension Substring {
    /// Without the spaces and tabs at either end (HTTP's optional whitespace).
    func trimmingSpaces() -> Substring {
        var out = self
        while out.first == " " || out.first == "\t" { out.removeFirst() }
        while out.last == " " || out.last == "\t" { out.removeLast() }
        return out
    }
}
