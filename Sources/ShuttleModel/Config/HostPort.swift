/// A parsed `host:port`: IPv4 (`10.0.0.1:80`), IPv6 in brackets
/// (`[::1]:80`), a host name (`db.local:5432`), or for listen addresses no
/// host at all (`:8080`, every interface).
public struct HostPort: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Host: Equatable, Hashable, Sendable {
        /// No host: every interface (listen addresses only).
        case any
        case ipv4(String)
        case ipv6(String)
        case name(String)
    }

    public var host: Host
    public var port: Int

    public init(host: Host, port: Int) {
        self.host = host
        self.port = port
    }

    /// The host as a resolver or socket wants it: no brackets.
    public var hostString: String {
        switch host {
        case .any: return ""
        case .ipv4(let s), .ipv6(let s), .name(let s): return s
        }
    }

    public var description: String {
        switch host {
        case .any: return ":\(port)"
        case .ipv6(let s): return "[\(s)]:\(port)"
        case .ipv4(let s), .name(let s): return "\(s):\(port)"
        }
    }

    /// Why an address string is not a usable `host:port`.
    public enum ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        case empty
        case missingPort
        case badPort(String)
        /// Port 0 where a connection must go to a real port.
        case portZero
        case badHost(String)
        case missingHost

        public var description: String {
            switch self {
            case .empty: return "is empty"
            case .missingPort: return "is not host:port"
            case .badPort(let p): return "has port \"\(p)\" outside 0-65535"
            case .portZero: return "has port 0, which only a listen address may have"
            case .badHost(let h): return "has host \"\(h)\" that is neither an IP address nor a host name"
            case .missingHost: return "has no host"
            }
        }
    }

    /// Parses `text`. A listen address may omit the host and use port 0 (any
    /// free port); a dialled address needs both.
    public static func parse(_ text: String, listening: Bool) -> Result<HostPort, ParseError> {
        if text.isEmpty { return .failure(.empty) }
        let hostPart: Substring
        let portPart: Substring
        var bracketed = false
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.badHost(text)) }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return .failure(.missingPort) }
            portPart = rest.dropFirst()
            bracketed = true
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(.missingPort) }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return .failure(.badHost(String(hostPart))) }  // IPv6 without brackets
        }
        guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
            let port = Int(portPart), port <= 65535
        else { return .failure(.badPort(String(portPart))) }
        if port == 0 && !listening { return .failure(.portZero) }

        let host: Host
        if bracketed {
            guard isIPv6(hostPart) else { return .failure(.badHost(String(hostPart))) }
            host = .ipv6(String(hostPart))
        } else if hostPart.isEmpty {
            guard listening else { return .failure(.missingHost) }
            host = .any
        } else if isIPv4(hostPart) {
            host = .ipv4(String(hostPart))
        } else if looksNumeric(hostPart) {
            return .failure(.badHost(String(hostPart)))
        } else if isHostName(hostPart) {
            host = .name(String(hostPart))
        } else {
            return .failure(.badHost(String(hostPart)))
        }
        return .success(HostPort(host: host, port: port))
    }

    static func isIPv4(_ s: Substring) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber }
                && Int(part)! <= 255
        }
    }

    /// Digits and dots only but not a valid IPv4 address (`300.1.1.1`, `10.0.0`).
    static func looksNumeric(_ s: Substring) -> Bool {
        s.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "." }
    }

    static func isIPv6(_ s: Substring) -> Bool {
        var text = s
        if let zone = text.firstIndex(of: "%") {  // fe80::1%eth0
            guard text.index(after: zone) < text.endIndex else { return false }
            text = text[..<zone]
        }
        guard !text.isEmpty, text.count <= 45 else { return false }
        let doubleColons = countDoubleColons(text)
        guard doubleColons <= 1, !text.contains(":::") else { return false }
        var groups = text.split(separator: ":", omittingEmptySubsequences: true)
        var groupBudget = 8
        if let last = groups.last, last.contains(".") {
            guard isIPv4(last) else { return false }
            groups.removeLast()
            groupBudget = 6
        }
        guard groups.allSatisfy({ g in g.count <= 4 && g.allSatisfy { $0.isHexDigit } }) else { return false }
        if doubleColons == 1 { return groups.count < groupBudget }
        // Without "::", no empty groups anywhere.
        return groups.count == groupBudget && !text.hasPrefix(":") && !text.hasSuffix(":")
            && !text.contains("::")
    }

    /// RFC 1123 host names: dot-separated labels of letters, digits and
    /// inner hyphens, each 1-63 characters, 253 in all. A final dot is allowed.
    public static func isHostName(_ s: Substring) -> Bool {
        var name = s
        if name.hasSuffix(".") { name = name.dropLast() }
        guard !name.isEmpty, name.count <= 253 else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isLabel)
    }

    static func isLabel(_ label: Substring) -> Bool {
        guard !label.isEmpty, label.count <= 63, label.first != "-", label.last != "-" else { return false }
        return label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }
}

/// How many times "::" occurs, not overlapping.
private func countDoubleColons(_ s: Substring) -> Int {
    var count = 0
    var previousWasColon = false
    for c in s {
        if c == ":" && previousWasColon {
            count += 1
            previousWasColon = false
        } else {
            previousWasColon = c == ":"
        }
    }
    return count
}
