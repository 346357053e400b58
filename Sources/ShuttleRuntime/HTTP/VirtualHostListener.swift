import NIOCore
import NIOPosix
import ShuttleModel

#if os(Linux)
import Glibc
#endif

/// A virtual-host listener (`-http`, `-https`): on Linux, a server channel
/// on every event loop of the group, each on a socket of its own in one
/// SO_REUSEPORT group (`ListeningGroup`), so that a client connection is
/// accepted, set up and served on one loop. (NIO's ServerBootstrap on a
/// group accepts on one loop and hands each other connection to another
/// loop and back: two thread hops per connection.)
public struct VirtualHostListener: Sendable {
    /// One server channel per event loop.
    public let channels: [any Channel]
    #if os(Linux)
    /// The listener on the relay's loops instead (`-http-relay epoll`).
    let relay: HTTPRelayListener?
    /// Where its close completes.
    let control: (any EventLoop)?

    init(channels: [any Channel], relay: HTTPRelayListener? = nil, control: (any EventLoop)? = nil) {
        self.channels = channels
        self.relay = relay
        self.control = control
    }
    #endif

    /// Where it listens (the port the system chose, for port 0).
    public var localAddress: SocketAddress? {
        #if os(Linux)
        if let relay { return relay.localAddress }
        #endif
        return channels.first?.localAddress
    }

    /// What serves TLS on an HTTPS listener: the system's OpenSSL on the
    /// relay, swift-nio-ssl on NIO.
    public var tlsLibrary: String {
        #if os(Linux)
        if relay != nil { return SystemTLS.version }
        #endif
        return "swift-nio-ssl (BoringSSL)"
    }

    /// Stops accepting on every loop.
    public func close() -> EventLoopFuture<Void> {
        #if os(Linux)
        if let relay, let control { return relay.close(on: control) }
        #endif
        return EventLoopFuture.andAllComplete(channels.map { $0.close() }, on: channels[0].eventLoop)
    }

    /// The most clients waiting to be accepted, per socket.
    static let backlog: Int32 = 1024

    /// Binds `address` (`host:port`) and accepts on every loop of `group`;
    /// `configure` adds what each server channel's bootstrap needs.
    static func bind(
        _ address: String, group: any EventLoopGroup, configure: (ServerBootstrap) -> ServerBootstrap
    ) -> EventLoopFuture<VirtualHostListener> {
        let loops = Array(group.makeIterator())
        #if os(Linux)
        let sockets: [Int32]
        do {
            let local = try SpliceAddress.listening(on: address, network: .tcp)
            sockets = try ListeningGroup.bind(local, sockets: loops.count, backlog: backlog)
        } catch {
            return loops[0].makeFailedFuture(error)
        }
        let opened = zip(loops, sockets).map { loop, fd in
            configure(ServerBootstrap(group: loop, childGroup: loop)).withBoundSocket(fd).map { channel in
                // NIO listened again, with its own backlog (128). On the
                // channel's loop, while the channel is open: `fd` is its socket.
                _ = listen(fd, backlog)
                return channel
            }
        }
        return EventLoopFuture.whenAllComplete(opened, on: loops[0]).flatMapThrowing { results in
            let channels = results.compactMap { try? $0.get() }
            if channels.count < results.count {
                for channel in channels { channel.close(promise: nil) }
                for case .failure(let error) in results { throw error }
            }
            return VirtualHostListener(channels: channels)
        }
        #else
        guard case .success(let parsed) = HostPort.parse(address, listening: true) else {
            return loops[0].makeFailedFuture(ListenError.badAddress(address))
        }
        let host = parsed.host == .any ? "0.0.0.0" : parsed.hostString
        return configure(ServerBootstrap(group: group))
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: parsed.port)
            .map { VirtualHostListener(channels: [$0]) }
        #endif
    }
}
