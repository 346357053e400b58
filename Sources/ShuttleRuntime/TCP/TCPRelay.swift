/// Which data path relays TCP services' bytes (`-tcp-relay`).
public enum TCPRelay: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Our own epoll loops moving bytes with splice(2), socket to pipe to
    /// socket, never through user space. Linux only.
    case splice
    /// Two SwiftNIO channels glued together: every platform.
    case nio

    /// splice on Linux, NIO elsewhere.
    public static var platformDefault: TCPRelay {
        #if os(Linux)
        return .splice
        #else
        return .nio
        #endif
    }

    /// What this platform can run: splice falls back to NIO off Linux.
    public var available: TCPRelay {
        #if os(Linux)
        return self
        #else
        return .nio
        #endif
    }

    public var description: String { rawValue }
}
