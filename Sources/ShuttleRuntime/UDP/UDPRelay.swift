/// Which data path relays UDP services' datagrams (`-udp-relay`).
public enum UDPRelay: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Our own epoll loops (the splice relay's threads): a service's
    /// datagrams read in batches with recvmmsg, sent on with plain system
    /// calls, no per-datagram objects. Linux only.
    case epoll
    /// SwiftNIO datagram channels: every platform.
    case nio

    /// epoll on Linux, NIO elsewhere.
    public static var platformDefault: UDPRelay {
        #if os(Linux)
        return .epoll
        #else
        return .nio
        #endif
    }

    /// What this platform can run: epoll falls back to NIO off Linux.
    public var available: UDPRelay {
        #if os(Linux)
        return self
        #else
        return .nio
        #endif
    }

    public var description: String { rawValue }
}
