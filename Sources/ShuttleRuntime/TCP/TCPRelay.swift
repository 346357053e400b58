/// Which data path relays TCP services' bytes (`-tcp-relay`).
public enum TCPRelay: String, DataPath {
    /// Our own epoll loops moving bytes with splice(2), socket to pipe to
    /// socket, never through user space. Linux only.
    case splice
    /// Two SwiftNIO channels glued together: every platform.
    case nio

    public static var linuxPath: TCPRelay { .splice }
    public static var nioPath: TCPRelay { .nio }
}
