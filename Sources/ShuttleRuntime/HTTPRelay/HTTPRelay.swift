/// Which data path the plain-HTTP virtual-host listener (`-http`) uses.
public enum HTTPRelay: String, Sendable, CaseIterable, CustomStringConvertible {
    /// SwiftNIO channels and NIOHTTP1's codecs: every platform, and HTTPS.
    case nio
    /// The relay's own epoll loops, heads read and written in place
    /// (ShuttleHTTPWire). Linux only.
    case epoll

    /// The epoll path on Linux: 1.8-2x the requests of the NIO path at a
    /// third to a half of its CPU per request (README, "Performance"); it
    /// passes every HTTP suite the NIO path passes and `bench/soak`.
    /// Elsewhere NIO.
    public static var platformDefault: HTTPRelay {
        #if os(Linux)
        return .epoll
        #else
        return .nio
        #endif
    }

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
