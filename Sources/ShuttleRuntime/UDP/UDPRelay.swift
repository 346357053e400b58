/// Which data path relays UDP services' datagrams (`-udp-relay`).
public enum UDPRelay: String, DataPath {
    /// Our own epoll loops (the splice relay's threads): a service's
    /// datagrams read in batches with recvmmsg, sent on with plain system
    /// calls, no per-datagram objects. Linux only.
    case epoll
    /// SwiftNIO datagram channels: every platform.
    case nio

    public static var linuxPath: UDPRelay { .epoll }
    public static var nioPath: UDPRelay { .nio }
}
