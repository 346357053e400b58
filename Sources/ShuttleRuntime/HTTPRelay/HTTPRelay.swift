/// Which data path the virtual-host listeners (`-http`, `-https`) use.
/// The epoll path is the default on Linux: 1.8-2x the requests of the NIO
/// path at a third to a half of its CPU per request (README,
/// "Performance"); it passes every HTTP suite the NIO path passes, and
/// `bench/soak`.
public enum HTTPRelay: String, DataPath {
    /// SwiftNIO channels and NIOHTTP1's codecs, NIOSSL for HTTPS: every platform.
    case nio
    /// The relay's own epoll loops, heads read and written in place
    /// (ShuttleHTTPWire), TLS with the system's OpenSSL. Linux only.
    case epoll

    public static var linuxPath: HTTPRelay { .epoll }
    public static var nioPath: HTTPRelay { .nio }
}
