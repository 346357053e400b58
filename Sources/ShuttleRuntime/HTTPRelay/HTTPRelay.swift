/// Which data path the plain-HTTP virtual-host listener (`-http`) uses.
public enum HTTPRelay: String, Sendable, CaseIterable, CustomStringConvertible {
    /// SwiftNIO channels and NIOHTTP1's codecs: every platform, and HTTPS.
    case nio
    /// The relay's own epoll loops, heads read and written in place
    /// (ShuttleHTTPWire). Linux only.
    case epoll

    /// NIO until the epoll path has run in production.
    public static var platformDefault: HTTPRelay { .nio }

    /// What this platform can run: epoll falls back to NIO off Linux.
    public var available: HTTPRelay {
        #if os(Linux)
        return self
        #else
        return .nio
        #endif
    }

    public var description: String { rawValue }
}
