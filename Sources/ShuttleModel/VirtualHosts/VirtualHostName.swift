/// Virtual host names: host names matched case-insensitively with any port
/// stripped, or wildcards such as `*.example.com` that match any name
/// ending in `.example.com`.
public enum VirtualHostName {
    /// Why `name` cannot be a virtual host name, if it cannot.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        var host = Substring(name)
        if host.hasPrefix("*.") { host = host.dropFirst(2) }
        if host.contains(":") { return "\"\(name)\" has a port; virtual hosts match names only" }
        if host.contains("*") { return "\"\(name)\" has a \"*\" other than a leading \"*.\"" }
        if !HostPort.isHostName(host) && !HostPort.isIPv4(host) {
            return "\"\(name)\" is not a host name"
        }
        return nil
    }

    /// The common `Host` header, read byte by byte: a lower-case ASCII name
    /// without a final dot, perhaps with a numeric port. It is its own lookup
    /// form (less the port); nil sends every other value the long way.
    static func plainLookupForm(_ value: String) -> String? {
        // Over the contiguous bytes (a native string's): a walk of the
        // UTF-8 view's indices cost 40 instructions a byte.
        guard let hostEnd = value.utf8.withContiguousStorageIfAvailable(plainHostEnd) ?? plainHostEnd(Array(value.utf8)[...]) else {
            return nil
        }
        return hostEnd == value.utf8.count ? value : String(decoding: value.utf8.prefix(hostEnd), as: UTF8.self)
    }

    /// Where the host of a plain `Host` value ends (at its port's colon or
    /// its end); nil if it is not plain.
    private static func plainHostEnd<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes) -> Int? where Bytes.Index == Int {
        var hostEnd = bytes.count
        var inPort = false
        var last: UInt8 = 0
        for index in bytes.indices {
            let byte = bytes[index]
            if inPort {
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
                continue
            }
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                last = byte
            case UInt8(ascii: ":"):
                inPort = true
                hostEnd = index - bytes.startIndex
            default:
                return nil
            }
        }
        guard last != 0, last != UInt8(ascii: ".") else { return nil }
        return hostEnd
    }

    /// The lookup form of a name from a config: lower case, no final dot.
    public static func normalize(_ name: String) -> String {
        var lower = name.lowercased()
        if lower.hasSuffix(".") { lower.removeLast() }
        return lower
    }

    /// The lookup form of a `Host` header value: port stripped (also from
    /// `[v6]:port`), lower case, no final dot. Nil when it is malformed.
    public static func fromHostHeader(_ value: String) -> String? {
        plainLookupForm(value) ?? parsedLookupForm(value)
    }

    /// `fromHostHeader` for any value, character by character.
    static func parsedLookupForm(_ value: String) -> String? {
        var host = Substring(value.trimmingSpaces())
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isNumber)) else { return nil }
            host = host[...close]
            return host.lowercased()
        }
        if let colon = host.lastIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            host = host[..<colon]
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "/" && $0 != "@" })
        else { return nil }
        return normalize(String(host))
    }
}

extension String {
    func trimmingSpaces() -> Substring {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
