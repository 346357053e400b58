#if os(Linux)
import CShuttleSplice
import Glibc
import ShuttleModel

/// A socket address as the kernel takes it, for the splice relay's own
/// sockets (SwiftNIO's `SocketAddress` does not hand its bytes out).
struct SpliceAddress: @unchecked Sendable {  // plain bytes
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    var family: Int32 { Int32(storage.ss_family) }

    /// An IPv4 or IPv6 literal (no resolution); nil for anything else.
    init?(ip: String, port: Int) {
        guard (0...65535).contains(port) else { return nil }
        let bigEndianPort = in_port_t(UInt16(port).bigEndian)
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, ip, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = bigEndianPort
            self.init(v4)
            return
        }
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET6, ip, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = bigEndianPort
            self.init(v6)
            return
        }
        return nil
    }

    init<Address>(_ address: Address) {
        withUnsafeMutableBytes(of: &storage) { target in
            withUnsafeBytes(of: address) { target.copyMemory(from: $0) }
        }
        length = socklen_t(MemoryLayout<Address>.size)
    }

    init() {}

    /// Resolves a host name with getaddrinfo (blocking: call it off the
    /// relay's threads); the first address of the family, or why none.
    static func resolve(_ host: String, port: Int, family: Int32, passive: Bool) -> Result<SpliceAddress, ResolveError> {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(ResolveError(host: host, reason: String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(list) }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            let info = current.pointee
            if let address = info.ai_addr, info.ai_family == AF_INET || info.ai_family == AF_INET6 {
                var result = SpliceAddress()
                withUnsafeMutableBytes(of: &result.storage) { target in
                    target.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(info.ai_addrlen)))
                }
                result.length = info.ai_addrlen
                return .success(result)
            }
            entry = info.ai_next
        }
        return .failure(ResolveError(host: host, reason: "no IPv4 or IPv6 address"))
    }

    /// The address family a network asks for (AF_UNSPEC: either).
    static func family(of network: Network) -> Int32 {
        switch network {
        case .tcp4, .udp4: return AF_INET
        case .tcp6, .udp6: return AF_INET6
        case .tcp, .udp: return AF_UNSPEC
        }
    }

    /// Where a listener binds: its IP, every interface of its network's
    /// family, or its host name resolved (blocking: a few system calls on
    /// the caller's thread).
    static func listening(on listener: Listener) throws -> SpliceAddress {
        try listening(on: listener.address, network: listener.network)
    }

    static func listening(on address: String, network: Network) throws -> SpliceAddress {
        guard case .success(let parsed) = HostPort.parse(address, listening: true) else {
            throw ListenError.badAddress(address)
        }
        let host: String
        switch parsed.host {
        case .any:
            return SpliceAddress(ip: family(of: network) == AF_INET6 ? "::" : "0.0.0.0", port: parsed.port)!
        case .ipv4(let ip), .ipv6(let ip):
            if let literal = SpliceAddress(ip: ip, port: parsed.port) { return literal }
            host = ip
        case .name(let name):
            host = name
        }
        switch resolve(host, port: parsed.port, family: family(of: network), passive: true) {
        case .success(let address): return address
        case .failure(let error): throw error
        }
    }

    struct ResolveError: Error, CustomStringConvertible {
        var host: String
        var reason: String
        var description: String { "cannot resolve \(host): \(reason)" }
    }

    /// The address of a socket's own end (getsockname).
    static func local(of fd: Int32) -> SpliceAddress? {
        asked(fd, getsockname)
    }

    /// The address of a socket's peer (getpeername).
    static func peer(of fd: Int32) -> SpliceAddress? {
        asked(fd, getpeername)
    }

    /// An address that `call` (getsockname or getpeername) writes for `fd`.
    private static func asked(
        _ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> SpliceAddress? {
        var address = SpliceAddress()
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &address.length) }
        }
        return status == 0 ? address : nil
    }

    /// The IP address as text, as SwiftNIO's `ipAddress` gives it.
    var ipString: String {
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case AF_INET:
                return Self.dotted(raw.load(as: sockaddr_in.self).sin_addr)
            case AF_INET6:
                var ip = raw.load(as: sockaddr_in6.self).sin6_addr
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
                guard inet_ntop(AF_INET6, &ip, &text, socklen_t(text.count)) != nil else { return "" }
                return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            default:
                return ""
            }
        }
    }

    /// `a.b.c.d`, written by hand: glibc's inet_ntop formats an IPv4
    /// address with sprintf, 1,500 instructions for each new client.
    static func dotted(_ address: in_addr) -> String {
        let value = UInt32(bigEndian: address.s_addr)
        return String(unsafeUninitializedCapacity: 15) { text in
            var count = 0
            for shift in [24, 16, 8, 0] as [UInt32] {
                let octet = UInt8(truncatingIfNeeded: value >> shift)
                if shift != 24 {
                    text[count] = UInt8(ascii: ".")
                    count += 1
                }
                if octet >= 100 {
                    text[count] = UInt8(ascii: "0") + octet / 100
                    count += 1
                }
                if octet >= 10 {
                    text[count] = UInt8(ascii: "0") + octet / 10 % 10
                    count += 1
                }
                text[count] = UInt8(ascii: "0") + octet % 10
                count += 1
            }
            return count
        }
    }

    var port: Int {
        withUnsafeBytes(of: storage) { raw in
            switch family {
            case AF_INET: return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
            case AF_INET6: return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            default: return 0
            }
        }
    }

    /// `ip:port`, IPv6 in brackets (as `Driver.describe` writes addresses).
    var description: String {
        family == AF_INET6 ? "[\(ipString)]:\(port)" : "\(ipString):\(port)"
    }

    /// Calls `body` with the address as the kernel takes it.
    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}

/// `strerror` as Swift text, with the number (as NIO's `IOError` shows it).
func describeErrno(_ call: String, _ number: Int32) -> String {
    "\(call): \(String(cString: strerror(number))) (errno: \(number))"
}

#endif
