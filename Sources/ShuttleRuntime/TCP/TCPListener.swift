import NIOCore
import NIOPosix
import ShuttleModel

/// A TCP service's listening socket. Each accepted client becomes a
/// `TCPProxyConnection`.
enum TCPListener {
    static func bind(_ listener: Listener, driver: Driver) -> EventLoopFuture<any Channel> {
        guard case .success(let address) = HostPort.parse(listener.address, listening: true) else {
            return driver.control.makeFailedFuture(ListenError.badAddress(listener.address))
        }
        let host = address.host == .any ? (listener.network == .tcp6 ? "::" : "0.0.0.0") : address.hostString
        let id = listener.id
        return ServerBootstrap(group: driver.group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: TCPProxyConnection.readAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try TCPProxyConnection.start(client: channel, listener: id, driver: driver)
                }
            }
            .bind(host: host, port: address.port)
            .map { $0 as any Channel }
    }
}

enum ListenError: Error, CustomStringConvertible {
    case badAddress(String)
    var description: String {
        switch self {
        case .badAddress(let a): return "\(a) is not a listen address"
        }
    }
}
